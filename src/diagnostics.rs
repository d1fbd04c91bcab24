//! Printing the planner's diagnostics: rendered on stderr, or as JSON on stdout.

use std::io::IsTerminal;

use mlp_plan::{Code, Diagnostics, Plan, Style};

use crate::exit::ExitStatus;

/// Diagnostics go to stderr: graphical with colour on a terminal, without colour when
/// `NO_COLOR` is set or stderr is not a terminal.
pub fn style() -> Style {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if !no_color && std::io::stderr().is_terminal() {
        Style::Color
    } else {
        Style::Plain
    }
}

/// Print diagnostics: pretty JSON on stdout with `--json`, rendered on stderr otherwise.
pub fn report(d: &Diagnostics, json: bool) {
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&d.to_json()).unwrap_or_default()
        );
    } else {
        eprint!("{}", d.render(style()));
    }
}

/// The exit status for diagnostics: bad usage (2) when every one is about a `--set` on the
/// command line, else a failure (1).
pub fn exit_status(d: &Diagnostics) -> ExitStatus {
    let usage = [Code::UnknownOverride.as_str(), Code::OverrideType.as_str()];
    if !d.items.is_empty() && d.items.iter().all(|i| usage.contains(&i.code)) {
        ExitStatus::Usage
    } else {
        ExitStatus::Failure
    }
}

/// Print the plan's warnings (an input that does not exist, ...) on stderr, if any.
pub fn warn(plan: &Plan) {
    if !plan.warnings.is_empty() {
        eprint!("{}", plan.warning_report().render(style()));
    }
}
