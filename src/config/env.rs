//! The environment overlay: `GUICHET_<SECTION>__<KEY>=value` overrides one key of the
//! configuration file, for containers and service managers that pass settings as environment
//! variables (and for secrets that should not sit in the file).
//!
//! - The name is the key's path in upper case, levels joined by a double underscore (keys contain
//!   `_`): `GUICHET_SERVER__HTTP_ADDR`, `GUICHET_EMAIL__INBOUND__LISTEN`,
//!   `GUICHET_VOICE__TWILIO__AUTH_TOKEN`. Variables without `__` (`GUICHET_TEST_POSTGRES_URL`,
//!   ...) are not overrides.
//! - The value is read as a TOML number or boolean where it is one, unless the file already holds
//!   a string there; anything else is a string. Quote it to force a string
//!   (`GUICHET_VOICE__HOLD__CALLBACK_KEY='"9"'`).
//! - Arrays (`[[queues]]`, `[[agents]]`, lists such as `working_days`) are not overridden: a path
//!   through or onto an array is refused. Queues and agents change live, or with `guichet apply`.
//! - A wrong name or value is refused with the variable's name; the value is never repeated in the
//!   message (it may be a secret).

use toml::{Table, Value};

/// The prefix of every override.
pub const PREFIX: &str = "GUICHET_";
/// Between two levels of a key's path.
pub const SEPARATOR: &str = "__";
/// The longest value read from one variable.
pub const MAX_VALUE_BYTES: usize = 4096;

/// One `GUICHET_<SECTION>__<KEY>` variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The variable's name, for messages.
    pub variable: String,
    /// The key's path, lower case: `["server", "http_addr"]`.
    pub path: Vec<String>,
    /// The raw value.
    pub value: String,
}

/// The overrides among `vars` (for example `std::env::vars()`), in the variables' name order so
/// that the result never depends on the environment's order.
pub fn overrides_from(vars: impl IntoIterator<Item = (String, String)>) -> Vec<Override> {
    let mut found: Vec<Override> = vars
        .into_iter()
        .filter_map(|(variable, value)| {
            let rest = variable.strip_prefix(PREFIX)?;
            if !rest.contains(SEPARATOR) {
                return None;
            }
            let path = rest
                .split(SEPARATOR)
                .map(|part| part.to_ascii_lowercase())
                .collect();
            Some(Override {
                variable,
                path,
                value,
            })
        })
        .collect();
    found.sort_by(|a, b| a.variable.cmp(&b.variable));
    found
}

/// The overrides in this process's environment (variables whose name or value is not Unicode are
/// not overrides).
pub fn from_process() -> Vec<Override> {
    overrides_from(
        std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        }),
    )
}

/// Sets `o`'s key in `table`; `Err` says what is wrong, without the value.
pub fn apply(table: &mut Table, o: &Override) -> Result<(), String> {
    if o.value.len() > MAX_VALUE_BYTES {
        return Err(format!("longer than {MAX_VALUE_BYTES} bytes"));
    }
    let valid_part = |p: &String| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    if !o.path.iter().all(valid_part) {
        return Err(format!(
            "a name is {PREFIX}<SECTION>{SEPARATOR}<KEY>, with letters, digits and single \
             underscores between the double ones"
        ));
    }
    let Some((key, sections)) = o.path.split_last() else {
        return Err("names no key".to_owned());
    };
    let mut here = table;
    for (depth, section) in sections.iter().enumerate() {
        let entry = here
            .entry(section.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        here = match entry {
            Value::Table(inner) => inner,
            Value::Array(_) => {
                return Err(format!(
                    "[{}] is an array: arrays are not overridden (edit the file, or change queues \
                     and agents live)",
                    o.path[..=depth].join(".")
                ))
            }
            _ => {
                return Err(format!(
                    "{} is a value, not a section",
                    o.path[..=depth].join(".")
                ))
            }
        };
    }
    let value = match here.get(key) {
        Some(Value::Array(_)) => {
            return Err(format!(
                "{} is an array: arrays are not overridden (edit the file)",
                o.path.join(".")
            ))
        }
        Some(Value::Table(_)) => {
            return Err(format!(
                "{} is a section: name one of its keys ({}{SEPARATOR}<KEY>)",
                o.path.join("."),
                o.variable
            ))
        }
        Some(Value::String(_)) => Value::String(o.value.clone()),
        Some(Value::Integer(_)) => match read_value(&o.value)? {
            v @ Value::Integer(_) => v,
            _ => return Err("expects a whole number, as the file has there".to_owned()),
        },
        Some(Value::Float(_)) => match read_value(&o.value)? {
            Value::Integer(i) => Value::Float(i as f64),
            v @ Value::Float(_) => v,
            _ => return Err("expects a number, as the file has there".to_owned()),
        },
        Some(Value::Boolean(_)) => match read_value(&o.value)? {
            v @ Value::Boolean(_) => v,
            _ => return Err("expects true or false, as the file has there".to_owned()),
        },
        Some(Value::Datetime(_)) | None => read_value(&o.value)?,
    };
    here.insert(key.clone(), value);
    Ok(())
}

/// Whether `o` set a number, a boolean or a date where the file has nothing: such a value may
/// have been meant as a string (a numeric password, a key such as `"9"`).
pub fn inferred(file: &Table, o: &Override) -> bool {
    let mut here = file;
    for part in &o.path[..o.path.len().saturating_sub(1)] {
        match here.get(part) {
            Some(Value::Table(inner)) => here = inner,
            _ => return !matches!(read_value(&o.value), Ok(Value::String(_)) | Err(_)),
        }
    }
    let absent = o.path.last().is_none_or(|key| !here.contains_key(key));
    absent && !matches!(read_value(&o.value), Ok(Value::String(_)) | Err(_))
}

/// A number, a boolean or a quoted string as TOML reads it; anything else is the text itself.
fn read_value(raw: &str) -> Result<Value, String> {
    let parsed = format!("v = {raw}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"));
    match parsed {
        Some(Value::Array(_)) | Some(Value::Table(_)) => {
            Err("arrays and tables are not overridden (edit the file)".to_owned())
        }
        Some(value) => Ok(value),
        None => Ok(Value::String(raw.to_owned())),
    }
}

/// The same override with its value read as a string whatever it looks like (used when a
/// number-looking value lands on a string key absent from the file).
pub fn as_string(table: &mut Table, o: &Override) {
    let Some((key, sections)) = o.path.split_last() else {
        return;
    };
    let mut here = table;
    for section in sections {
        match here.get_mut(section) {
            Some(Value::Table(inner)) => here = inner,
            _ => return,
        }
    }
    here.insert(key.clone(), Value::String(o.value.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, value: &str) -> Override {
        overrides_from([(name.to_owned(), value.to_owned())])
            .pop()
            .expect("an override")
    }

    #[test]
    fn only_double_underscore_names_are_overrides() {
        let found = overrides_from([
            ("GUICHET_TEST_POSTGRES_URL".to_owned(), "x".to_owned()),
            ("PATH".to_owned(), "/bin".to_owned()),
            ("GUICHET_STORE__SYNCHRONOUS".to_owned(), "full".to_owned()),
            ("GUICHET_EMAIL__INBOUND__LISTEN".to_owned(), "a".to_owned()),
        ]);
        let paths: Vec<_> = found.iter().map(|o| o.path.join(".")).collect();
        assert_eq!(paths, ["email.inbound.listen", "store.synchronous"]);
    }

    #[test]
    fn values_keep_the_files_type_or_read_as_toml() {
        let mut table: Table = "[voice.hold]\ncallback_key = \"9\"\npoll_secs = 10\n"
            .parse()
            .expect("toml");
        apply(&mut table, &one("GUICHET_VOICE__HOLD__CALLBACK_KEY", "8")).expect("set");
        apply(&mut table, &one("GUICHET_VOICE__HOLD__POLL_SECS", "5")).expect("set");
        apply(&mut table, &one("GUICHET_SERVER__HTTP_ADDR", "0.0.0.0:80")).expect("set");
        apply(&mut table, &one("GUICHET_LOG__FORMAT", "\"json\"")).expect("set");
        let hold = &table["voice"]["hold"];
        assert_eq!(hold["callback_key"], Value::String("8".into()));
        assert_eq!(hold["poll_secs"], Value::Integer(5));
        assert_eq!(
            table["server"]["http_addr"],
            Value::String("0.0.0.0:80".into())
        );
        assert_eq!(table["log"]["format"], Value::String("json".into()));
    }

    #[test]
    fn arrays_are_not_overridden_and_values_are_not_repeated() {
        let mut table: Table = "[[queues]]\nid = \"a\"\n[calendar]\nworking_days = [\"mon\"]\n"
            .parse()
            .expect("toml");
        for (name, value) in [
            ("GUICHET_QUEUES__ID", "secret-1"),
            ("GUICHET_CALENDAR__WORKING_DAYS", "secret-2"),
            ("GUICHET_CALENDAR__HOLIDAYS", "[\"secret-3\"]"),
            ("GUICHET_CALENDAR", "secret-4"),
        ] {
            let o = overrides_from([(name.to_owned(), value.to_owned())]);
            if let Some(o) = o.first() {
                let message = apply(&mut table, o).expect_err(name);
                assert!(!message.contains("secret"), "{message}");
            }
        }
        let message =
            apply(&mut table, &one("GUICHET_SERVER__X", &"y".repeat(5000))).expect_err("long");
        assert!(message.contains("4096"), "{message}");
        let message = apply(&mut table, &one("GUICHET_SERVER____X", "y")).expect_err("empty");
        assert!(message.contains("SECTION"), "{message}");
    }
}
