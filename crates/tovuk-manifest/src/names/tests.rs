//! Tests for app, env-var and host name rules.

use super::{check_app_name, check_env_name, check_hostname, suggest_app_name, suggest_env_name};

#[test]
fn app_names_are_dns_labels() {
    for good in ["a", "my-api", "api2", "0x", &"a".repeat(63)] {
        assert_eq!(check_app_name(good), Ok(()), "{good}");
    }
    for bad in ["", "My-Api", "my_api", "-api", "api-", "my.api", "ápi", &"a".repeat(64)] {
        assert!(check_app_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn app_name_suggestions_are_valid_and_close() {
    assert_eq!(suggest_app_name("My_API"), Some("my-api".to_owned()));
    assert_eq!(suggest_app_name("--web--app--"), Some("web-app".to_owned()));
    assert_eq!(suggest_app_name("my-api"), None);
    assert_eq!(suggest_app_name("___"), None);
}

#[test]
fn env_names_are_upper_snake_case() {
    for good in ["DB", "AUTH_2", "DATABASE_URL", &"A".repeat(64)] {
        assert_eq!(check_env_name(good), Ok(()), "{good}");
    }
    for bad in ["", "db", "2DB", "_DB", "MY-DB", "TOVUK_DB", &"A".repeat(65)] {
        assert!(check_env_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn env_name_suggestions_are_valid() {
    assert_eq!(suggest_env_name("my-db"), Some("MY_DB".to_owned()));
    assert_eq!(suggest_env_name("TOVUK_DB"), Some("APP_DB".to_owned()));
    assert_eq!(suggest_env_name("2db"), Some("N_2DB".to_owned()));
    assert_eq!(suggest_env_name("DB"), None);
}

#[test]
fn hostnames_are_lowercase_fqdns() {
    for good in ["api.example.com", "a-b.c0.io", "x.y"] {
        assert_eq!(check_hostname(good), Ok(()), "{good}");
    }
    for bad in [
        "",
        "localhost",
        "example",
        "API.example.com",
        "https://api.example.com",
        "api.example.com/x",
        "api..example.com",
        "-api.example.com",
        "api_x.example.com",
        "10.0.0.1",
        "my-api.localhost",
        "*.example.com",
    ] {
        assert!(check_hostname(bad).is_err(), "{bad}");
    }
}
