//! What `mlp run` shows while it works.
//!
//! * `--json`: one JSON object per event on stdout (the event log tools and tests read).
//! * a terminal: a live line with done/total, the running stages (each with how long it has
//!   run) and the elapsed time, redrawn every tick (indicatif), with each finished stage
//!   printed above it; ✓ and ✗ in colour unless `NO_COLOR` is set;
//! * otherwise (CI logs, pipes, `TERM=dumb`): one line per finished stage.
//!
//! A failed stage's last log lines are printed under it, so the reason is on screen.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use mlp_engine::run::{Event, Reporter, Status, human_ms};

/// How many lines of a failed stage's log to show.
const LOG_TAIL: usize = 15;

pub fn reporter(json: bool, verbose: bool) -> Box<dyn Reporter> {
    if json {
        Box::new(Json)
    } else {
        let term = std::env::var("TERM").unwrap_or_default();
        let live = !verbose && !crate::quiet() && std::io::stderr().is_terminal() && term != "dumb";
        let colour = live && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Box::new(Human::new(live, colour))
    }
}

/// What the live line shows, shared with the bar's tick (which redraws it every 120 ms).
#[derive(Default)]
struct Live {
    started: Option<Instant>,
    total: usize,
    done: usize,
    running: BTreeMap<String, Instant>,
}

/// The live line: `[2/7] train 12.3 s, evaluate 0.4 s  (15.1 s)`.
fn live_line(l: &Live, now: Instant) -> String {
    let mut running: Vec<(&String, &Instant)> = l.running.iter().collect();
    // The longest-running first: the one a user waits for.
    running.sort_by_key(|(name, t)| (**t, (*name).clone()));
    let mut shown: Vec<String> = running
        .iter()
        .take(3)
        .map(|(name, t)| format!("{name} {}", seconds(now.saturating_duration_since(**t))))
        .collect();
    if running.len() > 3 {
        shown.push(format!("and {} more", running.len() - 3));
    }
    let elapsed = l
        .started
        .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
    if l.total == 0 {
        return format!("starting  ({})", seconds(elapsed));
    }
    format!(
        "[{}/{}] {}  ({})",
        l.done,
        l.total,
        if shown.is_empty() {
            "starting".to_string()
        } else {
            format!("running {}", shown.join(", "))
        },
        seconds(elapsed)
    )
}

/// `0.4 s`, `12.3 s`, `3m07s`: a tenth of a second is what a ticking line can show.
fn seconds(d: Duration) -> String {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        human_ms(ms)
    }
}

struct Json;

impl Reporter for Json {
    fn event(&mut self, e: &Event) {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer(&mut out, e);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
}

struct Human {
    bar: Option<ProgressBar>,
    live: Arc<Mutex<Live>>,
    colour: bool,
    counts: BTreeMap<&'static str, usize>,
}

impl Human {
    fn new(live: bool, colour: bool) -> Self {
        let state = Arc::new(Mutex::new(Live::default()));
        let bar = live.then(|| {
            let b = ProgressBar::new_spinner();
            let shared = Arc::clone(&state);
            let template = if colour {
                "{spinner:.cyan} {live}{ray}"
            } else {
                "{spinner} {live}{ray}"
            };
            b.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_spinner())
                    .with_key(
                        "live",
                        move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                            if let Ok(l) = shared.lock() {
                                let _ = w.write_str(&live_line(&l, Instant::now()));
                            }
                        },
                    )
                    // Stages whose Ray job waits for resources, updated at every tick.
                    .with_key("ray", |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let p = mlp_engine::ray::pending();
                        if !p.is_empty() {
                            let _ = write!(w, "  waiting on Ray: {}", p.join(", "));
                        }
                    }),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Human {
            bar,
            live: state,
            colour,
            counts: BTreeMap::new(),
        }
    }

    fn line(&self, s: &str) {
        match &self.bar {
            Some(b) => b.println(s),
            None => eprintln!("{s}"),
        }
    }

    /// `mark` in green (`ok`) or red, when colour is on.
    fn mark(&self, mark: &str, ok: bool) -> String {
        match (self.colour, ok) {
            (false, _) => mark.to_string(),
            (true, true) => format!("\x1b[32m{mark}\x1b[0m"),
            (true, false) => format!("\x1b[31m{mark}\x1b[0m"),
        }
    }

    fn update(&self, f: impl FnOnce(&mut Live)) {
        if let Ok(mut l) = self.live.lock() {
            f(&mut l);
        }
        if let Some(b) = &self.bar {
            b.tick();
        }
    }
}

// One arm per event, each a method below: a new event (a warning, a notice) is one more
// arm, printed with `self.line` so it does not garble the live line.
impl Reporter for Human {
    fn event(&mut self, e: &Event) {
        match e {
            Event::Start { run, stages } => self.start(run, *stages),
            Event::StageStarted { stage, .. } => self.stage_started(stage),
            Event::StageFinished {
                stage,
                status,
                started_ms,
                ended_ms,
                log,
                notes,
            } => self.stage_finished(
                stage,
                status,
                ended_ms.saturating_sub(*started_ms),
                log.as_deref(),
                notes,
            ),
            Event::Warning { message } => self.line(&format!("mlp: warning: {message}")),
            Event::Waiting { holder } => self.line(&format!("waiting for {holder}")),
            Event::Finish {
                run,
                ok,
                elapsed_ms,
            } => self.finish(run, *ok, *elapsed_ms),
        }
    }
}

impl Human {
    fn start(&mut self, run: &str, stages: usize) {
        self.update(|l| {
            l.total = stages;
            l.started = Some(Instant::now());
        });
        if self.bar.is_none() {
            note!(
                "run {run} : {stages} stage{}",
                if stages == 1 { "" } else { "s" }
            );
        }
    }

    fn stage_started(&mut self, stage: &str) {
        self.update(|l| {
            l.running.insert(stage.to_string(), Instant::now());
        });
        if self.bar.is_none() {
            note!("  > {stage}");
        }
    }

    fn stage_finished(
        &mut self,
        stage: &str,
        status: &Status,
        took_ms: u64,
        log: Option<&str>,
        notes: &[String],
    ) {
        self.update(|l| {
            l.running.remove(stage);
            l.done += 1;
        });
        *self.counts.entry(status.label()).or_default() += 1;
        let took = human_ms(took_ms);
        match status {
            Status::Fresh => {}
            _ if crate::quiet()
                && !matches!(status, Status::Failed { .. } | Status::Interrupted) => {}
            Status::Restored => self.line(&format!("  ↺ {stage} (restored from the cache)")),
            Status::Ran { attempts } if *attempts > 1 => self.line(&format!(
                "  {} {stage} ({took}, {attempts} attempts)",
                self.mark("✓", true)
            )),
            Status::Ran { .. } => {
                self.line(&format!("  {} {stage} ({took})", self.mark("✓", true)))
            }
            Status::WouldRun { reason } => self.line(&format!("  • {stage} would run: {reason}")),
            Status::Skipped { reason } => self.line(&format!("  - {stage} skipped: {reason}")),
            Status::NotRun => {}
            Status::Interrupted => self.line(&format!(
                "  {} {stage} interrupted after {took}",
                self.mark("✗", false)
            )),
            Status::Failed { reason, .. } => {
                let mut msg = format!("  {} {stage} failed: {reason}", self.mark("✗", false));
                if let Some(log) = log {
                    let tail = tail(Path::new(log), LOG_TAIL);
                    if !tail.is_empty() {
                        msg.push_str(&format!("\n    ── last lines of {log} ──"));
                        for l in tail {
                            msg.push_str("\n    │ ");
                            msg.push_str(&l);
                        }
                    }
                }
                self.line(&msg);
            }
        }
        for n in notes {
            self.line(&format!("    note: {n}"));
        }
    }

    fn finish(&mut self, run: &str, ok: bool, elapsed_ms: u64) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if ok && self.counts.keys().all(|k| *k == "fresh") {
            note!(
                "nothing to do: every stage is up to date ({})",
                human_ms(elapsed_ms)
            );
            return;
        }
        let summary: Vec<String> = self
            .counts
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        if ok && crate::quiet() {
            return;
        }
        eprintln!(
            "run {run} {} in {}: {}",
            if ok { "succeeded" } else { "FAILED" },
            human_ms(elapsed_ms),
            summary.join(", ")
        );
    }
}

/// The last `n` lines of a file (lossy UTF-8), reading only its end.
fn tail(path: &Path, n: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(16 * 1024);
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(start)).is_err() || f.read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(n);
    lines[from..].iter().map(|l| l.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_line_names_running_stages_with_their_time() {
        let t0 = Instant::now();
        let mut l = Live {
            started: Some(t0),
            ..Live::default()
        };
        assert_eq!(live_line(&l, t0), "starting  (0.0 s)");
        (l.total, l.done) = (7, 2);
        assert_eq!(live_line(&l, t0), "[2/7] starting  (0.0 s)");
        l.running.insert("train".into(), t0);
        l.running
            .insert("evaluate".into(), t0 + Duration::from_millis(3000));
        let now = t0 + Duration::from_millis(5300);
        assert_eq!(
            live_line(&l, now),
            "[2/7] running train 5.3 s, evaluate 2.3 s  (5.3 s)"
        );
        for i in 0..3 {
            l.running
                .insert(format!("s{i}"), t0 + Duration::from_millis(4000));
        }
        assert!(live_line(&l, now).ends_with("s0 1.3 s, and 2 more  (5.3 s)"));
    }
}
