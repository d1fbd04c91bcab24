//! What `mlp run` shows while it works.
//!
//! * `--json`: one JSON object per event on stdout (the event log tools and tests read).
//! * a terminal: a live line with the running stages, done/total and the elapsed time
//!   (indicatif), with each finished stage printed above it;
//! * otherwise (CI logs, pipes): one line per finished stage.
//!
//! A failed stage's last log lines are printed under it, so the reason is on screen.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use mlp_engine::run::{Event, Reporter, Status, human_ms};

/// How many lines of a failed stage's log to show.
const LOG_TAIL: usize = 15;

pub fn reporter(json: bool, verbose: bool) -> Box<dyn Reporter> {
    if json {
        Box::new(Json)
    } else {
        Box::new(Human::new(!verbose && std::io::stderr().is_terminal()))
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
    started: Instant,
    total: usize,
    done: usize,
    running: BTreeMap<String, Instant>,
    counts: BTreeMap<&'static str, usize>,
}

impl Human {
    fn new(live: bool) -> Self {
        let bar = live.then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg}{ray}")
                    .map(|st| {
                        // Stages whose Ray job waits for resources, updated at every tick.
                        st.with_key("ray", |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let p = mlp_engine::ray::pending();
                            if !p.is_empty() {
                                let _ = write!(w, "  waiting on Ray: {}", p.join(", "));
                            }
                        })
                    })
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Human {
            bar,
            started: Instant::now(),
            total: 0,
            done: 0,
            running: BTreeMap::new(),
            counts: BTreeMap::new(),
        }
    }

    fn line(&self, s: &str) {
        match &self.bar {
            Some(b) => b.println(s),
            None => eprintln!("{s}"),
        }
    }

    fn refresh(&self) {
        if let Some(b) = &self.bar {
            let names: Vec<&str> = self.running.keys().map(String::as_str).collect();
            let mut shown = names.iter().take(4).copied().collect::<Vec<_>>().join(", ");
            if names.len() > 4 {
                shown.push_str(&format!(" and {} more", names.len() - 4));
            }
            b.set_message(format!(
                "[{}/{}] {} running: {}  ({})",
                self.done,
                self.total,
                self.running.len(),
                if shown.is_empty() {
                    "-".to_string()
                } else {
                    shown
                },
                human_ms(self.started.elapsed().as_millis() as u64)
            ));
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
        self.total = stages;
        self.started = Instant::now();
        if self.bar.is_none() {
            eprintln!(
                "run {} : {stages} stage{}",
                run.trim_start_matches('0'),
                if stages == 1 { "" } else { "s" }
            );
        }
    }

    fn stage_started(&mut self, stage: &str) {
        self.running.insert(stage.to_string(), Instant::now());
        if self.bar.is_none() {
            eprintln!("  > {stage}");
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
        self.running.remove(stage);
        self.done += 1;
        *self.counts.entry(status.label()).or_default() += 1;
        let took = human_ms(took_ms);
        match status {
            Status::Fresh => {}
            Status::Restored => self.line(&format!("  ↺ {stage} (restored from the cache)")),
            Status::Ran { attempts } if *attempts > 1 => {
                self.line(&format!("  ✓ {stage} ({took}, {attempts} attempts)"))
            }
            Status::Ran { .. } => self.line(&format!("  ✓ {stage} ({took})")),
            Status::WouldRun { reason } => self.line(&format!("  • {stage} would run: {reason}")),
            Status::Skipped { reason } => self.line(&format!("  - {stage} skipped: {reason}")),
            Status::NotRun => {}
            Status::Interrupted => self.line(&format!("  ✗ {stage} interrupted after {took}")),
            Status::Failed { reason, .. } => {
                let mut msg = format!("  ✗ {stage} failed: {reason}");
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
        self.refresh();
    }

    fn finish(&mut self, run: &str, ok: bool, elapsed_ms: u64) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if ok && self.counts.keys().all(|k| *k == "fresh") {
            eprintln!(
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
        eprintln!(
            "run {} {} in {}: {}",
            run.trim_start_matches('0'),
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
