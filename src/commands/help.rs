//! `mlp help [COMMAND]`: the help of mlp or of one command (the same as `--help`). A
//! command of its own rather than clap's, so that `mlp help --help` works too.

use clap::CommandFactory;

use crate::cli::{Cli, HelpArgs};
use crate::exit::ExitStatus;

pub fn help(args: &HelpArgs) -> ExitStatus {
    let mut cmd = Cli::command();
    cmd.build();
    let mut at = &mut cmd;
    let mut path = String::from("mlp");
    for name in &args.command {
        match at.find_subcommand_mut(name) {
            Some(sub) => {
                path.push(' ');
                path.push_str(name);
                at = sub;
            }
            None => {
                return ExitStatus::Usage.error(format!(
                    "`{path} {name}` is no command; `mlp help` lists them"
                ));
            }
        }
    }
    out!("{}", at.render_help());
    ExitStatus::Success
}
