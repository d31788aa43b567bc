//! The provider goes away: what is in hand keeps working, what needs the provider says so.

use crate::support::{AUDIENCE, Provider, Req, answered, config, edge, error_of, log_in, passed};
use serde_json::json;
use tovuk_edge_auth::Requirement;

#[tokio::test]
async fn sessions_and_cached_keys_outlive_the_provider_and_new_logins_get_503() {
    let mut provider = Provider::start().await;
    let edge = edge(config(&provider)).await;
    let (jar, _) = log_in(&edge, &provider, Req::get("/").browser()).await;
    let token = provider.mint(json!({"sub": "alice"})).await;
    let unknown =
        provider.mint_with(json!({"claims": {"sub": "a", "aud": AUDIENCE}, "header": {"kid": "k-later"}})).await;
    assert!(passed(edge.auth.check(&Requirement::Session, &Req::get("/").bearer(&token).view()).await).is_some());

    provider.kill().await;

    let session = passed(edge.auth.check(&Requirement::Session, &Req::get("/").cookies(&jar).view()).await);
    assert_eq!(session.expect("the session still passes").subject, "johndoe");
    let bearer = passed(edge.auth.check(&Requirement::Session, &Req::get("/").bearer(&token).view()).await);
    assert_eq!(bearer.expect("a token of a cached key still passes").subject, "alice");

    // A key the edge has not seen can't be checked: 503, naming the provider.
    let answer = answered(edge.auth.check(&Requirement::Session, &Req::get("/").bearer(&unknown).view()).await);
    assert_eq!(answer.status, 503);
    let (code, message) = error_of(&answer);
    assert_eq!(code, "auth_provider_unavailable");
    assert!(message.contains(&format!("the auth provider {} is unavailable", provider.issuer)), "{message}");
    // On an optional route the same request is simply anonymous.
    assert_eq!(passed(edge.auth.check(&Requirement::Optional, &Req::get("/").bearer(&unknown).view()).await), None);

    // A new login would send the browser to a provider that is down.
    for answer in [
        answered(edge.auth.check(&Requirement::Session, &Req::get("/orders").browser().view()).await),
        edge.auth.platform_path(&Req::get("/.tovuk/auth/login").view()).await.expect("login"),
    ] {
        assert_eq!(answer.status, 503);
        assert_eq!(error_of(&answer).0, "auth_provider_unavailable");
    }

    // Logout still ends the session here.
    let logout = Req::post("/.tovuk/auth/logout").cookies(&jar).header("origin", crate::support::ORIGIN);
    assert_eq!(edge.auth.platform_path(&logout.view()).await.expect("logout").status, 303);
    assert_eq!(answered(edge.auth.check(&Requirement::Session, &Req::get("/").cookies(&jar).view()).await).status, 401);
}

#[tokio::test]
async fn an_edge_that_never_reached_the_provider_answers_503_for_tokens() {
    let mut provider = Provider::start().await;
    let token = provider.mint(json!({})).await;
    let edge = edge(config(&provider)).await;
    provider.kill().await;
    let answer = answered(edge.auth.check(&Requirement::Session, &Req::get("/").bearer(&token).view()).await);
    assert_eq!((answer.status.as_u16(), error_of(&answer).0.as_str()), (503, "auth_provider_unavailable"));
}
