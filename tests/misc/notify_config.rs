//! The `[email.outbound]`, `[sms]` and `[notify]` sections: a good file loads; each mistake is refused
//! with the key at fault and what to write.

use std::path::Path;

use guichet::config::{Config, ConfigError};

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/guichet.toml");

const GOOD: &str = r#"
[email.outbound]
relay_host = "smtp.example.org"
tls = "starttls"
username = "guichet"
password = "secret"
from_address = "contact@example.org"
from_name = "Allô Service Public"

[sms]
account_sid = "AC123"
auth_token = "token"
numbers = [{ number = "+33644630000", queue = "benefits" }]

[notify]
retry_initial_ms = 1000
retry_max_secs = 60
"#;

fn load(extra: &str) -> Result<Config, ConfigError> {
    let demo = std::fs::read_to_string(DEMO).expect("demo");
    let text = format!("{demo}\n{extra}");
    let path = Path::new("test.toml");
    let config = Config::from_toml(&text, path)?;
    config.validate(path)?;
    Ok(config)
}

fn refused(extra: &str, words: &[&str]) {
    let err = load(extra).expect_err("should be refused").to_string();
    for w in words {
        assert!(err.contains(w), "{err:?} should name {w:?}");
    }
}

#[test]
fn a_complete_file_loads_with_defaults() {
    let config = load(GOOD).expect("valid");
    let email = config.email.outbound.expect("[email.outbound]");
    assert_eq!(email.port(), 587);
    let sms = config.sms.expect("sms");
    assert_eq!(sms.base_url, "https://api.twilio.com");
    assert_eq!(sms.queue_of("+33644630000"), Some("benefits"));
    assert_eq!(config.notify.give_up_after_secs, 3 * 24 * 3600);
    // Backoff doubles from the first wait and stops at the cap.
    assert_eq!(config.notify.backoff_ms(1), 1000);
    assert_eq!(config.notify.backoff_ms(2), 2000);
    assert_eq!(config.notify.backoff_ms(7), 60_000);
    assert_eq!(config.notify.backoff_ms(1000), 60_000);
}

#[test]
fn mistakes_are_named() {
    refused(
        &GOOD.replace("contact@example.org", "not an address"),
        &["[email.outbound] from_address", "not an email address"],
    );
    refused(
        &GOOD.replace("username = \"guichet\"\n", ""),
        &["[email.outbound] username", "both or neither"],
    );
    refused(
        &GOOD.replace("tls = \"starttls\"", "tls = \"ssl\""),
        &["ssl"],
    );
    refused(
        &GOOD.replace("+33644630000", "0644630000"),
        &["[sms] numbers", "E.164"],
    );
    refused(
        &GOOD.replace("queue = \"benefits\"", "queue = \"nowhere\""),
        &["[sms] numbers", "nowhere"],
    );
    refused(
        &GOOD.replace("queue = \"benefits\"", "queue = \"tax\""),
        &["[sms] numbers", "does not take sms"],
    );
    refused(
        &GOOD.replace("auth_token = \"token\"", "auth_token = \"\""),
        &["[sms] auth_token"],
    );
    refused(
        &GOOD.replace("retry_max_secs = 60", "retry_max_secs = 0"),
        &["[notify] retry_max_secs"],
    );
    refused(&format!("{GOOD}\n[sms.extra]\n"), &["extra"]);
}
