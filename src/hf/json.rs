//! Reading and writing the JSON files of a model directory (`config.json`, `tokenizer.json`)
//! with `serde_json`: every read names the file and the field, and says what it found.

use serde_json::Value;
use std::path::Path;

/// One JSON file read whole, remembered with its name for the errors.
pub struct JsonFile {
    /// The parsed document.
    pub value: Value,
    /// The file's name, as the errors say it (`config.json`).
    pub name: String,
}

impl JsonFile {
    /// Read and parse `dir/name`; the error names the file and, for bad JSON, the line.
    pub fn read(dir: &Path, name: &str) -> Result<JsonFile, String> {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let value = serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
        Ok(JsonFile {
            value,
            name: name.to_string(),
        })
    }

    /// The field `key`, if present and not null.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.value.get(key).filter(|v| !v.is_null())
    }

    /// A whole number at `key`, required.
    pub fn usize(&self, key: &str) -> Result<usize, String> {
        let v = self.get(key).ok_or_else(|| self.missing(key))?;
        v.as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| self.bad(key, v, "a whole number"))
    }

    /// A number at `key`, or `default` when absent.
    pub fn f32_or(&self, key: &str, default: f32) -> Result<f32, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_f64().map(|x| x as f32).ok_or_else(|| self.bad(key, v, "a number")),
        }
    }

    /// A boolean at `key`, or `default` when absent.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.bad(key, v, "true or false")),
        }
    }

    /// A string at `key`, or `default` when absent.
    pub fn str_or<'a>(&'a self, key: &str, default: &'a str) -> Result<&'a str, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_str().ok_or_else(|| self.bad(key, v, "a string")),
        }
    }

    /// Refuse unless `key` (default `default`) equals `want`: a setting microlm's model does not
    /// have. `why` says what the other value would change.
    pub fn require(&self, key: &str, default: Value, want: Value, why: &str) -> Result<(), String> {
        let found = self.get(key).cloned().unwrap_or(default);
        if found != want {
            return Err(format!(
                "{}: {key} = {found}, microlm supports only {want} ({why})",
                self.name
            ));
        }
        Ok(())
    }

    fn missing(&self, key: &str) -> String {
        format!("{}: the field '{key}' is missing", self.name)
    }

    fn bad(&self, key: &str, v: &Value, want: &str) -> String {
        format!("{}: '{key}' = {v} is not {want}", self.name)
    }
}

/// An f32 setting as the JSON number that reads back as the same f32: its shortest decimal
/// (1e-5, not 9.999999747378752e-6).
pub fn number(x: f32) -> Value {
    let shortest: f64 = x.to_string().parse().expect("an f32 prints as a number");
    Value::from(shortest)
}

/// Write `value` to `dir/name`, pretty-printed.
pub fn write(dir: &Path, name: &str, value: &Value) -> Result<(), String> {
    let path = dir.join(name);
    let text = serde_json::to_string_pretty(value).expect("a JSON value always prints");
    std::fs::write(&path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Where `found` first differs from `want`, as a path (`model.vocab."a"`) with both values, or
/// `None` when they are equal.
pub fn first_difference(want: &Value, found: &Value, path: &str) -> Option<String> {
    match (want, found) {
        (Value::Object(w), Value::Object(f)) => {
            let keys: std::collections::BTreeSet<&String> = w.keys().chain(f.keys()).collect();
            keys.into_iter().find_map(|k| {
                let (a, b) = (w.get(k).unwrap_or(&Value::Null), f.get(k).unwrap_or(&Value::Null));
                let here = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                first_difference(a, b, &here)
            })
        }
        (Value::Array(w), Value::Array(f)) if w.len() == f.len() => w
            .iter()
            .zip(f)
            .enumerate()
            .find_map(|(i, (a, b))| first_difference(a, b, &format!("{path}[{i}]"))),
        _ if want == found => None,
        _ => {
            let short = |v: &Value| {
                let s = v.to_string();
                if s.chars().count() > 80 {
                    format!("{}...", s.chars().take(80).collect::<String>())
                } else {
                    s
                }
            };
            Some(format!(
                "{path} is {}, microlm's would be {}",
                short(found),
                short(want)
            ))
        }
    }
}
