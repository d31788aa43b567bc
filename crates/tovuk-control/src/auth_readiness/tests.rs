//! The auth readiness rules, one case each: what blocks, with which command, and when it is ready.

use super::{AuthMode, CsrfMode, evaluate};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

fn manifest(routes: &str) -> tovuk_manifest::Manifest {
    let text = format!(
        "[app]\nname = \"shop\"\nkind = \"web\"\ncapabilities = [\"http\"]\n[run]\ncommand = \"./serve\"\n[health]\npath = \"/\"\n{routes}"
    );
    let (manifest, report) = tovuk_manifest::check_bytes("tovuk.toml", text.as_bytes());
    manifest.unwrap_or_else(|| panic!("{report:?}"))
}

fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, Zeroizing<String>> {
    pairs.iter().map(|(name, value)| ((*name).to_owned(), Zeroizing::new((*value).to_owned()))).collect()
}

const ADMIN: &str = "[[routes]]\npath = \"/admin\"\nauth = \"session\"\n[[routes]]\npath = \"/api\"\nauth = \"capability\"\ncapability = \"orders:write\"\n";

#[test]
fn routes_without_auth_need_nothing() {
    let none = manifest("[[routes]]\npath = \"/\"\nauth = \"none\"\n");
    assert!(matches!(evaluate("shop", none.routes(), &values(&[])), Ok(None)));
}

#[test]
fn an_unset_or_unknown_mode_is_one_blocker_naming_the_route_and_the_command() {
    let admin = manifest(ADMIN);
    for (set, observed) in [(vec![], "not set"), (vec![("TOVUK_AUTH_MODE", "saml")], "`saml`")] {
        let blockers = evaluate("shop", admin.routes(), &values(&set)).expect_err("blocked");
        assert_eq!(blockers.len(), 1, "{blockers:?}");
        let blocker = &blockers[0];
        assert_eq!((blocker.kind.as_str(), blocker.capability.as_str()), ("auth", "edge-auth"));
        assert_eq!((blocker.name.as_str(), blocker.route.as_deref()), ("TOVUK_AUTH_MODE", Some("/admin")));
        assert_eq!((blocker.observed.as_str(), blocker.check.as_str()), (observed, "auth_mode"));
        assert_eq!(blocker.next, "tovuk env set shop TOVUK_AUTH_MODE=oidc");
    }
}

#[test]
fn each_mode_names_every_variable_it_still_needs_and_then_is_ready() {
    let admin = manifest(ADMIN);
    let names = |set: &[(&str, &str)]| -> Vec<String> {
        evaluate("shop", admin.routes(), &values(set))
            .expect_err("blocked")
            .into_iter()
            .map(|blocker| blocker.name)
            .collect()
    };
    assert_eq!(
        names(&[("TOVUK_AUTH_MODE", "oidc")]),
        ["TOVUK_AUTH_ISSUER", "TOVUK_AUTH_CLIENT_ID", "TOVUK_AUTH_CAPABILITY_CLAIM"]
    );
    assert_eq!(
        names(&[("VARY_AUTH_MODE", "jwt")]),
        ["TOVUK_AUTH_ISSUER", "TOVUK_AUTH_AUDIENCE", "TOVUK_AUTH_CAPABILITY_CLAIM"]
    );
    let capability = evaluate("shop", admin.routes(), &values(&[("TOVUK_AUTH_MODE", "oidc")])).expect_err("blocked");
    assert_eq!(capability[2].route.as_deref(), Some("/api"), "the route that needs the claim");
    assert_eq!(
        names(&[
            ("TOVUK_AUTH_MODE", "jwt"),
            ("TOVUK_AUTH_ISSUER", "ftp://x"),
            ("TOVUK_AUTH_AUDIENCE", "shop"),
            ("TOVUK_AUTH_CAPABILITY_CLAIM", "caps"),
            ("TOVUK_AUTH_CSRF_MODE", "strict")
        ]),
        ["TOVUK_AUTH_ISSUER", "TOVUK_AUTH_CSRF_MODE"]
    );

    let ready = values(&[
        ("TOVUK_AUTH_MODE", "oidc"),
        ("TOVUK_AUTH_ISSUER", "http://localhost:8080"),
        ("TOVUK_AUTH_CLIENT_ID", "shop-web"),
        ("TOVUK_AUTH_CAPABILITY_CLAIM", "capabilities"),
    ]);
    let settings = evaluate("shop", admin.routes(), &ready).expect("ready").expect("settings");
    assert_eq!((settings.mode, settings.csrf), (AuthMode::Oidc, CsrfMode::Origin));
    assert_eq!(settings.audience, "shop-web", "oidc's audience is the client id");
}
