//! `mlp completions SHELL`: clap's completion script for the shell, plus, where the shell
//! lets a script ask a program, the stage names of the pipeline at hand (from
//! `mlp graph --format names`) for `mlp run`, `mlp watch`, `mlp explain` and `--force`.

use clap::CommandFactory;
use clap_complete::{Shell, generate};

use crate::cli::{Cli, CompletionsArgs, ShellArg};
use crate::exit::ExitStatus;

pub fn completions(args: &CompletionsArgs) -> ExitStatus {
    let shell = match args.shell {
        ShellArg::Bash => Shell::Bash,
        ShellArg::Zsh => Shell::Zsh,
        ShellArg::Fish => Shell::Fish,
        ShellArg::Powershell => Shell::PowerShell,
    };
    let mut buf = Vec::new();
    generate(shell, &mut Cli::command(), "mlp", &mut buf);
    let mut script = String::from_utf8_lossy(&buf).into_owned();
    match args.shell {
        ShellArg::Bash => script.push_str(BASH_STAGES),
        ShellArg::Zsh => script = zsh_stages(&script),
        ShellArg::Fish => script.push_str(FISH_STAGES),
        ShellArg::Powershell => {}
    }
    out!("{script}");
    ExitStatus::Success
}

/// Wraps clap's `_mlp`: a stage name where `run`, `watch`, `explain` or `--force` want one.
const BASH_STAGES: &str = r#"
# Stage names of the pipeline at hand (`mlp graph --format names`).
_mlp_stages() {
    local i sub="" file=() cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            -f|--file) file=(-f "${COMP_WORDS[i+1]}"); ((i++)) ;;
            -*) ;;
            *) [[ -z "$sub" ]] && sub="${COMP_WORDS[i]}" ;;
        esac
    done
    case "$sub:$prev" in
        *:-j|*:--jobs|*:--set|*:--executor|*:--debounce|*:-f|*:--file) ;;
        run:--force|watch:*|run:*|explain:*)
            if [[ "$cur" != -* ]]; then
                COMPREPLY=($(compgen -W "$(mlp "${file[@]}" graph --format names 2>/dev/null)" -- "$cur"))
                return 0
            fi
            ;;
    esac
    _mlp "$@"
}
complete -F _mlp_stages -o bashdefault -o default mlp
"#;

const FISH_STAGES: &str = r#"
# Stage names of the pipeline at hand (`mlp graph --format names`).
complete -c mlp -n "__fish_seen_subcommand_from run watch explain" -f -a "(mlp graph --format names 2>/dev/null)" -d stage
"#;

/// clap's zsh script completes the stage arguments with `_default` (files): ask mlp instead.
fn zsh_stages(script: &str) -> String {
    let mut out = String::with_capacity(script.len() + 300);
    for line in script.lines() {
        let stage_arg = line.contains("::stages -- ")
            || line.contains(":stage -- ")
            || line.contains("--force=[");
        if stage_arg && line.contains(":_default") {
            out.push_str(&line.replace(":_default", ":_mlp_stages"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    let hook = "\n# Stage names of the pipeline at hand (`mlp graph --format names`).\n\
        (( $+functions[_mlp_stages] )) ||\n\
        _mlp_stages() {\n    local -a stages\n    stages=(${(f)\"$(mlp graph --format names 2>/dev/null)\"})\n    _describe -t stages 'stage' stages\n}\n";
    // The hook must be defined before the `compdef` line runs the completion.
    match out.rfind("\nif [ \"$funcstack[1]\" = \"_mlp\" ]") {
        Some(at) => out.insert_str(at, hook),
        None => out.push_str(hook),
    }
    out
}
