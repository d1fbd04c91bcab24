//! Every diagnostic code, in one table: its stable code string and a one-line title.
//! `book/src/errors.md` documents each one (the book's tests hold the two together).
//!
//! `E0001`–`E0005`: the file cannot be read or parsed (the parser emits `E0001`–`E0004`
//! and one `E0101`); `E0100` onwards: the file parses, but does not make a valid pipeline
//! (the planner, `mlp-plan`, emits them and re-exports this table). Two codes of that
//! range are retired and not in use.

macro_rules! codes {
    ($($name:ident = $code:literal, $title:literal;)*) => {
        /// A diagnostic code. `Diagnostic::new` takes one (or the code string of a syntax
        /// error).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $(#[doc = $title] $name,)*
        }

        impl Code {
            /// Every code, in the order of the table.
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            /// The code as it is printed: `E0104`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => $code,)*
                }
            }

            /// What the code means, in one line.
            pub const fn title(self) -> &'static str {
                match self {
                    $(Code::$name => $title,)*
                }
            }
        }
    };
}

codes! {
    Syntax = "E0001", "Syntax error: the parser expected something else here.";
    TooLarge = "E0002", "A number, size, duration or index is too large.";
    UnknownEscape = "E0003", "Unknown escape in a string.";
    UnterminatedString = "E0004", "Unterminated string.";
    NotUtf8 = "E0005", "A pipeline, included or params file is not UTF-8 text.";
    UnknownStageKeyword = "E0100", "Unknown keyword inside a stage.";
    UnknownKeyword = "E0101", "Unknown keyword at the top of a file or in a `for` loop.";
    UnknownStage = "E0102", "Unknown stage in a reference, `after`, or `failed(...)`.";
    UnknownOutput = "E0103", "Unknown output of a stage, or a whole-stage reference to a stage without outputs.";
    UnknownParam = "E0104", "Unknown params key.";
    DuplicateStage = "E0105", "Two stages have the same name.";
    DuplicateOutput = "E0106", "The same path is an output of two stages (or declared twice by one).";
    ReadsOwnOutput = "E0107", "A stage reads its own output.";
    DependencyCycle = "E0108", "Dependency cycle.";
    UnknownName = "E0109", "Unknown name in an interpolation `${...}`, or a use that cannot be resolved.";
    CommandOnlyName = "E0110", "`${in}`, `${out}` or `${metrics}` outside `run` and `fallback`.";
    IndexOutOfRange = "E0111", "Index out of range: `${in[N]}`, `${out[N]}` or `${metrics[N]}` past the last item.";
    TypeError = "E0112", "Type error in an expression, or a resource of the wrong kind.";
    UnknownFunction = "E0113", "Unknown function in an expression.";
    WrongArguments = "E0114", "Wrong arguments to `failed`, `abs`, `min` or `max`.";
    UnknownExprName = "E0115", "Unknown or incomplete name in an expression.";
    CannotRead = "E0116", "A pipeline or included file cannot be read.";
    IncludeCycle = "E0117", "Include cycle: a file includes itself, directly or through others.";
    ParamsUnreadable = "E0118", "A params file cannot be read.";
    ParamsSyntax = "E0119", "A params file does not parse, or its top level is not a map.";
    ParamsFormat = "E0120", "A params file's extension is not `.yaml`, `.yml`, `.toml` or `.json`.";
    DuplicateItem = "E0121", "An item that a stage may have once appears twice.";
    ForNotList = "E0123", "`for` over a params key that is not a list.";
    DuplicateOutputName = "E0124", "Two outputs of one stage have the same name.";
    OutputOutside = "E0125", "An output path is not inside the workspace, or is a glob.";
    NestedOutput = "E0126", "An output of one stage is inside an output (directory) of another.";
    UnknownResource = "E0127", "Unknown resource.";
    UnknownOverride = "E0129", "`--set KEY=VALUE` names a key that no params file or `param` defines.";
    InvalidStageName = "E0130", "Invalid stage name (after interpolation).";
    WaitsForItself = "E0131", "A stage waits for itself (`after`) or handles its own failure.";
    LoopVarInUse = "E0132", "A nested `for` reuses an outer loop's variable name.";
    EmptyInput = "E0133", "Empty input path.";
    ZeroDuration = "E0134", "`every`, `timeout` or an executor's `time` with a zero duration.";
    AlwaysAndFrozen = "E0135", "A stage is both `always` and `frozen`.";
    UnknownExecutor = "E0136", "Unknown executor (not `local`, `slurm` or `ray`).";
    UnknownSetting = "E0137", "Unknown executor setting, or a setting for `executor local`.";
    SettingType = "E0138", "An executor setting of the wrong type.";
    DuplicateExecutor = "E0139", "Two `executor` items at the top of the pipeline, or a setting given twice.";
    UnknownTracker = "E0140", "Unknown tracker (not `mlflow`).";
    TrackingSetting = "E0141", "A `tracking` setting that is unknown, given twice, not a string, or not an `http://` URI.";
    DuplicateTracking = "E0142", "Two `tracking` items in the pipeline.";
    RaySetting = "E0143", "A malformed value of an `executor ray` setting.";
    OverrideType = "E0144", "`--set KEY=VALUE` gives a value of another type than the params file's.";
    UnknownCacheMode = "E0145", "Unknown cache mode (not `copy` or `link`).";
    DuplicateCache = "E0146", "Two `cache` items at the top of the pipeline.";
    MissingInput = "E0170", "A warning: an input path does not exist, and no stage writes it.";
    RemoteUrl = "E0180", "A `remote` URL that is not a directory, `file://` or `s3://bucket/prefix` URL, or that holds credentials.";
    RemoteSetting = "E0181", "A `remote` setting that is unknown, given twice, or not `true`/`false`.";
    DuplicateRemote = "E0182", "Two `remote` items in the pipeline.";
}

impl Code {
    /// The code printed as `code`, if the table has it.
    pub fn parse(code: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == code)
    }
}

impl From<Code> for &'static str {
    fn from(c: Code) -> &'static str {
        c.as_str()
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_code_twice_and_in_order() {
        let all: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(all, sorted, "a code is listed twice, or out of order");
        for c in Code::ALL {
            let s = c.as_str();
            assert!(
                s.len() == 5 && s.starts_with('E') && s[1..].bytes().all(|b| b.is_ascii_digit()),
                "{s}"
            );
            assert!(!c.title().is_empty() && !c.title().contains('\n'));
            assert_eq!(Code::parse(s), Some(*c));
        }
    }
}
