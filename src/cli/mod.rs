//! A small command-line flag reader for the examples: `--name value` pairs and bare
//! positional words, each flag read once with its type and default, and every mistake (an
//! unknown flag, a value that does not parse, a missing value) reported by name.
//!
//! ```
//! use microlm::cli::Flags;
//! let mut flags = Flags::parse(["--steps", "20", "--lr=0.5", "hello"].map(String::from)).unwrap();
//! assert_eq!(flags.get("steps", 100usize).unwrap(), 20);
//! assert_eq!(flags.get("lr", 1e-3f32).unwrap(), 0.5);
//! assert_eq!(flags.get("seed", 0u64).unwrap(), 0); // default
//! flags.takes_positional(1, 1, "a greeting"); // this program reads exactly one word
//! assert_eq!(flags.positional(), &["hello".to_string()]);
//! flags.finish().unwrap(); // every flag given was read, and one word as declared
//! ```

use std::collections::BTreeMap;
use std::str::FromStr;

mod domain;
pub use domain::{Domain, Number};

/// Parsed flags; read each with [`Flags::get`], then call [`Flags::finish`].
#[derive(Clone, Debug, Default)]
pub struct Flags {
    values: BTreeMap<String, String>,
    positional: Vec<String>,
    read: Vec<String>,
    /// (flag, default, what it does) of each flag read with [`Flags::arg`], for `--help`.
    described: Vec<(String, String, String)>,
    help: bool,
    /// How many positional words the program takes (at least, at most) and what they are,
    /// declared with [`Flags::takes_positional`]; none unless declared.
    positional_wanted: (usize, usize, String),
}

impl Flags {
    /// The process's arguments (after the program name).
    pub fn from_env() -> Result<Flags, String> {
        Flags::parse(std::env::args().skip(1))
    }

    /// Parse `--name value`, `--name=value`, `--help` and positional words. A flag given twice
    /// is an error.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Flags, String> {
        let mut flags = Flags::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                flags.help = true;
                continue;
            }
            let Some(name) = arg.strip_prefix("--") else {
                flags.positional.push(arg);
                continue;
            };
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => {
                    let v = args.next().ok_or_else(|| format!("--{name} needs a value"))?;
                    (name.to_string(), v)
                }
            };
            if flags.values.insert(name.clone(), value).is_some() {
                return Err(format!("--{name} is given twice"));
            }
        }
        Ok(flags)
    }

    /// The value of `--name`, or `default` if it was not given.
    pub fn get<T: FromStr>(&mut self, name: &str, default: T) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        Ok(self.get_opt(name)?.unwrap_or(default))
    }

    /// The value of `--name`, if given.
    pub fn get_opt<T: FromStr>(&mut self, name: &str) -> Result<Option<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        self.read.push(name.to_string());
        match self.values.get(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|e| format!("--{name} {v}: {e}")),
        }
    }

    /// [`Flags::get`] that also records the flag's default and what it does, for
    /// [`Flags::usage`].
    pub fn arg<T: FromStr + std::fmt::Display>(&mut self, name: &str, default: T, help: &str) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        self.described
            .push((name.to_string(), default.to_string(), help.to_string()));
        self.get(name, default)
    }

    /// [`Flags::get_opt`] that records what the flag does, for [`Flags::usage`].
    pub fn arg_opt<T: FromStr>(&mut self, name: &str, help: &str) -> Result<Option<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        self.described
            .push((name.to_string(), "none".to_string(), help.to_string()));
        self.get_opt(name)
    }

    /// [`Flags::arg`] for a number that must lie in `domain`: a value outside it (zero for a
    /// count, a negative or NaN rate, infinity) is an error naming the flag and the allowed
    /// range, and `--help` shows the range beside the default.
    ///
    /// ```
    /// use microlm::cli::{Domain, Flags};
    /// let mut flags = Flags::parse(["--seeds", "0", "--lr", "nan"].map(String::from)).unwrap();
    /// let e = flags.arg_in("seeds", 2u64, Domain::at_least(1), "seeds").unwrap_err();
    /// assert_eq!(e, "--seeds 0: must be at least 1");
    /// let e = flags.arg_in("lr", 1e-3f32, Domain::above(0.0), "rate").unwrap_err();
    /// assert_eq!(e, "--lr NaN: must be a finite number above 0");
    /// // A value that is not a number of the type says the range too.
    /// let mut flags = Flags::parse(["--seed", "-1"].map(String::from)).unwrap();
    /// let e = flags.arg_in("seed", 0u64, Domain::seeds(), "seed").unwrap_err();
    /// assert_eq!(e, "--seed -1: invalid digit found in string; must be at least 0 and at most 18446744073709551615");
    /// ```
    pub fn arg_in<T: Number>(&mut self, name: &str, default: T, domain: Domain<T>, help: &str) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        let range = domain.describe();
        let value = self
            .arg(name, default, &format!("{help}; {range}"))
            .map_err(|e| format!("{e}; must be {range}"))?;
        domain.check(name, value)
    }

    /// [`Flags::arg_opt`] for a number that must lie in `domain`, if given.
    pub fn arg_opt_in<T: Number>(&mut self, name: &str, domain: Domain<T>, help: &str) -> Result<Option<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        let range = domain.describe();
        let value = self.arg_opt::<T>(name, &format!("{help}; {range}"));
        match value.map_err(|e| format!("{e}; must be {range}"))? {
            None => Ok(None),
            Some(v) => domain.check(name, v).map(Some),
        }
    }

    /// [`Flags::arg`] for a word that must be one of `choices` (the default among them); any
    /// other is an error naming the flag and listing them.
    pub fn arg_choice(&mut self, name: &str, default: &str, choices: &[&str], help: &str) -> Result<String, String> {
        let listed = choices.join(", ");
        let value: String = self.arg(name, default.to_string(), &format!("{help}; one of {listed}"))?;
        check(
            choices.contains(&value.as_str()),
            name,
            &value,
            &format!("expected one of {listed}"),
        )?;
        Ok(value)
    }

    /// The `--help` text: one line per flag read with [`Flags::arg`] or [`Flags::arg_opt`],
    /// with its default (the value this program would use if the flag were not given).
    /// `program` is the example's name, followed by what it takes besides flags, if anything
    /// (`"generate \"a prompt\""`).
    pub fn usage(&self, program: &str) -> String {
        let (name, words) = program.split_once(' ').unwrap_or((program, ""));
        let mut out = format!("cargo run --release --example {name} -- [flags] {words}\n");
        for (name, default, help) in &self.described {
            out += &format!("  --{name:<16} {help} ({default})\n");
        }
        out + "Threads: MICROLM_THREADS=n (default: all cores)."
    }

    /// The end of flag reading: with `--help`, print [`Flags::usage`] and return true (the
    /// program should stop there); otherwise fail on any unknown flag ([`Flags::finish`]) and
    /// return false.
    pub fn help_or_finish(&self, program: &str) -> Result<bool, String> {
        if self.help {
            println!("{}", self.usage(program));
            return Ok(true);
        }
        self.finish()?;
        Ok(false)
    }

    /// True if `--name` was given on the command line (whether or not it has been read).
    pub fn is_given(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// Refuse any of `names` that was given, saying `why` it does not apply: for flags that a
    /// choice made by another flag leaves unused (the model's shape, when it comes from a
    /// checkpoint).
    pub fn refuse_given(&self, names: &[&str], why: &str) -> Result<(), String> {
        match names.iter().find(|n| self.is_given(n)) {
            Some(n) => Err(format!("--{n}: {why}")),
            None => Ok(()),
        }
    }

    /// True if `--help` or `-h` was given.
    pub fn wants_help(&self) -> bool {
        self.help
    }

    /// Declare that the program takes `min` to `max` positional words, described as `what`
    /// (`"a prompt"`), for [`Flags::finish`] to check. Without this, any word that is not a
    /// flag is an error: a stray word is usually a typo, and ignoring it would hide it.
    pub fn takes_positional(&mut self, min: usize, max: usize, what: &str) {
        self.positional_wanted = (min, max, what.to_string());
    }

    /// The words that were not flags.
    pub fn positional(&self) -> &[String] {
        &self.positional
    }

    /// Fail on any flag that no [`Flags::get`] asked for (a typo, usually), listing the known
    /// ones, and on positional words the program did not declare with
    /// [`Flags::takes_positional`] (too many, or too few).
    pub fn finish(&self) -> Result<(), String> {
        if let Some(unknown) = self.values.keys().find(|k| !self.read.contains(k)) {
            let known: Vec<String> = self.read.iter().map(|k| format!("--{k}")).collect();
            if known.is_empty() {
                return Err(format!("unknown flag --{unknown}: this program takes no flags"));
            }
            return Err(format!("unknown flag --{unknown}; the flags are {}", known.join(" ")));
        }
        self.check_positional()
    }

    /// The positional words' count against what [`Flags::takes_positional`] declared.
    fn check_positional(&self) -> Result<(), String> {
        let (min, max, what) = &self.positional_wanted;
        let n = self.positional.len();
        if (*min..=*max).contains(&n) {
            return Ok(());
        }
        let words: Vec<String> = self.positional.iter().map(|w| format!("{w:?}")).collect();
        if *max == 0 {
            return Err(format!(
                "unexpected argument {}: this program takes only flags (--name value)",
                words.join(" ")
            ));
        }
        let wanted = if min == max {
            format!("{min}")
        } else {
            format!("{min} to {max}")
        };
        let got = if n == 0 {
            "none".to_string()
        } else {
            format!("{n}: {}", words.join(" "))
        };
        Err(format!("expected {wanted} positional argument(s) ({what}), got {got}"))
    }
}

/// Fail with `--name value: why` unless `ok`.
pub fn check(ok: bool, name: &str, value: impl std::fmt::Display, why: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("--{name} {value}: {why}"))
    }
}

/// The start of a program that takes no flags (the tours): `--help` prints its usage line and
/// exits, and any argument is an error naming it (status 2), rather than being ignored.
pub fn takes_no_flags(program: &str) {
    match Flags::from_env().and_then(|f| f.help_or_finish(program)) {
        Ok(false) => {}
        Ok(true) => std::process::exit(0),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}

/// An example's `main`: set the thread count from `MICROLM_THREADS`, call `run`, and on failure
/// print `error: ...` and exit with status 2.
pub fn main(run: impl FnOnce() -> Result<(), String> + Send) {
    crate::threads::init_threads_from_env();
    if let Err(e) = crate::threads::on_pool(run) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}
