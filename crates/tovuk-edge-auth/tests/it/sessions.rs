//! Browser sessions: the login through the provider and back, the session cookie (bound to
//! its app, unforgeable), CSRF on unsafe requests, and logout.

use crate::support::{
    APP, Jar, ORIGIN, Provider, Req, answered, config, edge, edge_on, error_of, location, log_in, passed,
    set_cookie_line,
};
use serde_json::json;
use tovuk_edge_auth::{AuthMethod, AuthMode, CsrfMode, Requirement};

#[tokio::test]
async fn a_browser_logs_in_through_the_provider_and_its_session_passes() {
    let mut provider = Provider::start().await;
    provider.call(json!({"op": "id_token_claims", "claims": {"capabilities": ["orders:read"]}})).await;
    let edge = edge(config(&provider)).await;

    // The redirect to the provider carries everything the code flow with PKCE needs.
    let start = answered(edge.auth.check(&Requirement::Session, &Req::get("/orders?page=2").browser().view()).await);
    assert_eq!(start.status, 302);
    let authorize = reqwest::Url::parse(&location(&start)).expect("URL");
    let query: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], "shop-client");
    assert_eq!(query["redirect_uri"], format!("{ORIGIN}/.tovuk/auth/callback"));
    assert_eq!(query["scope"], "openid");
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(["state", "nonce", "code_challenge"].iter().all(|key| query[*key].len() >= 22), "{query:?}");
    let login_cookie = set_cookie_line(&start, "tovuk_login");
    assert!(login_cookie.contains("Path=/.tovuk/auth/; Max-Age=600; SameSite=Lax; HttpOnly"), "{login_cookie}");
    assert!(!login_cookie.contains("Secure"), "{login_cookie}");

    let (jar, landed) = log_in(&edge, &provider, Req::get("/orders?page=2").browser()).await;
    assert_eq!(landed, "/orders?page=2");
    assert!(!jar.cookies.contains_key("tovuk_login"), "the login cookie is cleared");

    let request = Req::get("/orders").cookies(&jar);
    let identity = passed(edge.auth.check(&Requirement::Session, &request.view()).await).expect("an identity");
    assert_eq!(identity.subject, "johndoe");
    assert_eq!(identity.capabilities, ["orders:read"]);
    assert_eq!(identity.method, AuthMethod::Session);
    assert_eq!(identity.headers()["tovuk-auth-method"], "session");
    assert!(passed(edge.auth.check(&Requirement::Capability("orders:read".into()), &request.view()).await).is_some());
    let answer = answered(edge.auth.check(&Requirement::Capability("admin".into()), &request.view()).await);
    assert_eq!(answer.status, 403);
    assert!(error_of(&answer).1.contains("needs capability `admin`; the session grants: orders:read"));
}

#[tokio::test]
async fn session_cookies_are_http_only_lax_and_secure_when_asked() {
    let provider = Provider::start().await;
    let mut config = config(&provider);
    config.secure_cookies = true;
    let edge = edge(config).await;
    let start = answered(edge.auth.check(&Requirement::Session, &Req::get("/").browser().view()).await);
    assert!(set_cookie_line(&start, "tovuk_login").ends_with("; HttpOnly; Secure"));
    assert_eq!(edge.auth.cookie_security(), "HttpOnly, SameSite=Lax, Secure; CSRF check: origin");
    assert_eq!(edge.auth.provider_summary(), format!("issuer {}, client shop-client", provider.issuer));

    // The callback's cookies, through a login on this edge.
    let mut jar = Jar::default();
    jar.take(&start);
    let back = provider.http.get(location(&start)).send().await.expect("authorize");
    let callback = back.headers()["location"].to_str().expect("ASCII").to_owned();
    let path = callback.strip_prefix(ORIGIN).expect("back to the app");
    let done = edge.auth.platform_path(&Req::get(path).cookies(&jar).view()).await.expect("callback");
    let session = set_cookie_line(&done, "tovuk_session");
    assert!(session.ends_with("; Path=/; Max-Age=3600; SameSite=Lax; HttpOnly; Secure"), "{session}");
    let csrf = set_cookie_line(&done, "tovuk_csrf");
    assert!(csrf.ends_with("; Path=/; Max-Age=3600; SameSite=Lax; Secure"), "readable by scripts: {csrf}");
}

#[tokio::test]
async fn a_session_cookie_opens_only_for_its_own_app_and_key() {
    let provider = Provider::start().await;
    let shop = edge(config(&provider)).await;
    let (jar, _) = log_in(&shop, &provider, Req::get("/").browser()).await;

    // Another app on the same store and even the same cookie key: the app name is bound in.
    let mut blog = config(&provider);
    blog.app = "blog".to_owned();
    let blog = edge_on(blog, shop.store.clone(), tempfile::tempdir().expect("dir"));
    let answer = answered(blog.auth.check(&Requirement::Session, &Req::get("/").cookies(&jar).view()).await);
    assert_eq!(answer.status, 401);
    assert_eq!(answer.headers["www-authenticate"], "Bearer realm=\"blog\"");

    // The same app under another key (a key rotation) does not open it either.
    let mut rekeyed = config(&provider);
    rekeyed.cookie_key = [9; 32];
    let rekeyed = edge_on(rekeyed, shop.store.clone(), tempfile::tempdir().expect("dir"));
    assert_eq!(
        answered(rekeyed.auth.check(&Requirement::Session, &Req::get("/").cookies(&jar).view()).await).status,
        401
    );

    // Forged and altered cookies are no session at all: a browser is sent to log in.
    let sealed = jar.get("tovuk_session").to_owned();
    let mut altered = sealed.into_bytes();
    let middle = altered.len() / 2;
    altered[middle] = if altered[middle] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).expect("ASCII");
    for value in [altered.as_str(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x"] {
        let request = Req::get("/").browser().header("cookie", &format!("tovuk_session={value}"));
        let answer = answered(shop.auth.check(&Requirement::Session, &request.view()).await);
        assert_eq!(answer.status, 302, "{value}");
        assert!(location(&answer).starts_with(&provider.issuer));
    }
    // The login cookie can't stand in for a session: each cookie is bound to its name.
    let login = answered(shop.auth.check(&Requirement::Session, &Req::get("/").browser().view()).await);
    let mut login_jar = Jar::default();
    login_jar.take(&login);
    let as_session = format!("tovuk_session={}", login_jar.get("tovuk_login"));
    let request = Req::get("/").header("cookie", &as_session);
    assert_eq!(answered(shop.auth.check(&Requirement::Session, &request.view()).await).status, 401);
}

#[tokio::test]
async fn the_callback_refuses_a_foreign_state_and_returns_only_to_local_paths() {
    let provider = Provider::start().await;
    let edge = edge(config(&provider)).await;

    // A login that wants to end on another site ends on `/`.
    let (jar, landed) = log_in(&edge, &provider, Req::get("/.tovuk/auth/login?return=https://evil.example/")).await;
    assert_eq!(landed, "/");
    assert!(jar.cookies.contains_key("tovuk_session"));
    let (_, landed) = log_in(&edge, &provider, Req::get("/.tovuk/auth/login?return=//evil.example/x")).await;
    assert_eq!(landed, "/");
    let (_, landed) = log_in(&edge, &provider, Req::get("/.tovuk/auth/login?return=%2Fdocs%3Fa%3D1")).await;
    assert_eq!(landed, "/docs?a=1");

    // A callback this browser did not start (login CSRF), or with no login cookie at all.
    let start = answered(edge.auth.check(&Requirement::Session, &Req::get("/").browser().view()).await);
    let mut jar = Jar::default();
    jar.take(&start);
    let back = provider.http.get(location(&start)).send().await.expect("authorize");
    let callback = back.headers()["location"].to_str().expect("ASCII").to_owned();
    let path = callback.strip_prefix(ORIGIN).expect("back to the app");
    let (state_free, _) = path.split_once("&state=").expect("a state");
    let forged = format!("{state_free}&state=someone-elses");
    for request in [Req::get(&forged).cookies(&jar), Req::get(path)] {
        let answer = edge.auth.platform_path(&request.view()).await.expect("callback");
        assert_eq!(answer.status, 400);
        let (code, message) = error_of(&answer);
        assert_eq!(code, "login_failed");
        assert!(message.contains("started no login with this state"), "{message}");
    }
    // The provider reporting a refusal.
    let answer = edge
        .auth
        .platform_path(&Req::get("/.tovuk/auth/callback?error=access_denied&error_description=no").view())
        .await
        .expect("callback");
    assert!(error_of(&answer).1.contains("the provider refused the login: access_denied (no)"));

    // Paths under the prefix that are not the platform's, and other methods.
    assert_eq!(edge.auth.platform_path(&Req::get("/.tovuk/auth/nope").view()).await.expect("ours").status, 404);
    let answer = edge.auth.platform_path(&Req::post("/.tovuk/auth/callback").view()).await.expect("ours");
    assert_eq!((answer.status.as_u16(), answer.headers["allow"].to_str().ok()), (405, Some("GET")));
    assert!(edge.auth.platform_path(&Req::get("/.tovuk/authx").view()).await.is_none());
    assert!(edge.auth.platform_path(&Req::get("/orders").view()).await.is_none());
}

#[tokio::test]
async fn an_id_token_for_another_login_or_client_is_refused() {
    let mut provider = Provider::start().await;
    let edge = edge(config(&provider)).await;
    for (claims, reason) in [
        (json!({"nonce": "from-another-login"}), "nonce is not the one this login sent"),
        (json!({"aud": "another-client"}), "audience does not include `shop-client`"),
        (json!({"azp": "another-client"}), "issued to another client"),
    ] {
        provider.call(json!({"op": "id_token_claims", "claims": claims})).await;
        let start = answered(edge.auth.check(&Requirement::Session, &Req::get("/").browser().view()).await);
        let mut jar = Jar::default();
        jar.take(&start);
        let back = provider.http.get(location(&start)).send().await.expect("authorize");
        let callback = back.headers()["location"].to_str().expect("ASCII").to_owned();
        let path = callback.strip_prefix(ORIGIN).expect("back to the app");
        let answer = edge.auth.platform_path(&Req::get(path).cookies(&jar).view()).await.expect("callback");
        assert_eq!(answer.status, 400);
        let (code, message) = error_of(&answer);
        assert_eq!(code, "login_failed");
        assert!(message.contains(reason), "{message}");
        jar.take(&answer);
        assert!(!jar.cookies.contains_key("tovuk_session"));
    }
}

#[tokio::test]
async fn unsafe_session_requests_need_the_apps_origin_and_bearer_ones_do_not() {
    let mut provider = Provider::start().await;
    let edge = edge(config(&provider)).await;
    let (jar, _) = log_in(&edge, &provider, Req::get("/").browser()).await;
    let session = Requirement::Session;

    for request in [
        Req::post("/orders").cookies(&jar),
        Req::post("/orders").cookies(&jar).header("origin", "http://evil.example"),
        Req::post("/orders").cookies(&jar).header("origin", "https://shop.test:8080"),
        Req::new(http::Method::DELETE, "/orders/1").cookies(&jar).header("referer", "http://shop.test:9090/x"),
    ] {
        let answer = answered(edge.auth.check(&session, &request.view()).await);
        assert_eq!(answer.status, 403);
        let (code, message) = error_of(&answer);
        assert_eq!(code, "csrf_failed");
        assert!(message.contains("failed the CSRF check (origin mode)"), "{message}");
    }
    for request in [
        Req::post("/orders").cookies(&jar).header("origin", ORIGIN),
        Req::new(http::Method::PUT, "/orders/1").cookies(&jar).header("referer", &format!("{ORIGIN}/orders")),
        Req::new(http::Method::PATCH, "/orders/1").cookies(&jar).header("origin", "null").header("referer", ORIGIN),
        Req::get("/orders").cookies(&jar),
    ] {
        assert!(passed(edge.auth.check(&session, &request.view()).await).is_some());
    }
    // Bearer requests carry no ambient credential: no check.
    let token = provider.mint(json!({})).await;
    assert!(passed(edge.auth.check(&session, &Req::post("/orders").bearer(&token).view()).await).is_some());
    // An optional route takes a cross-site POST, without the session's identity.
    let cross = Req::post("/contact").cookies(&jar).header("origin", "http://evil.example");
    assert_eq!(passed(edge.auth.check(&Requirement::Optional, &cross.view()).await), None);
}

#[tokio::test]
async fn token_csrf_mode_wants_the_cookie_echoed_in_a_header() {
    let provider = Provider::start().await;
    let mut config = config(&provider);
    config.csrf_mode = CsrfMode::Token;
    let edge = edge(config).await;
    let (jar, _) = log_in(&edge, &provider, Req::get("/").browser()).await;
    let csrf = jar.get("tovuk_csrf").to_owned();
    assert!(csrf.len() >= 43);

    let good = Req::post("/orders").cookies(&jar).header("x-csrf-token", &csrf);
    assert!(passed(edge.auth.check(&Requirement::Session, &good.view()).await).is_some());
    for request in [
        Req::post("/orders").cookies(&jar).header("origin", ORIGIN),
        Req::post("/orders").cookies(&jar).header("x-csrf-token", "guess"),
    ] {
        let answer = answered(edge.auth.check(&Requirement::Session, &request.view()).await);
        assert_eq!((answer.status.as_u16(), error_of(&answer).0.as_str()), (403, "csrf_failed"));
    }
}

#[tokio::test]
async fn logout_revokes_the_session_everywhere_and_clears_its_cookies() {
    let provider = Provider::start().await;
    let edge = edge(config(&provider)).await;
    let (jar, _) = log_in(&edge, &provider, Req::get("/").browser()).await;
    let stolen = jar.clone();

    // A cross-site POST can't log the user out.
    let cross = Req::post("/.tovuk/auth/logout").cookies(&jar).header("origin", "http://evil.example");
    assert_eq!(edge.auth.platform_path(&cross.view()).await.expect("logout").status, 403);
    assert!(passed(edge.auth.check(&Requirement::Session, &Req::get("/").cookies(&jar).view()).await).is_some());

    let logout = Req::post("/.tovuk/auth/logout").cookies(&jar).header("origin", ORIGIN);
    let answer = edge.auth.platform_path(&logout.view()).await.expect("logout");
    assert_eq!(answer.status, 303);
    let goodbye = reqwest::Url::parse(&location(&answer)).expect("URL");
    assert!(goodbye.as_str().starts_with(&format!("{}/endsession?", provider.issuer)), "{goodbye}");
    let query: std::collections::HashMap<_, _> = goodbye.query_pairs().into_owned().collect();
    assert_eq!(query["post_logout_redirect_uri"], format!("{ORIGIN}/"));
    let mut after = jar.clone();
    after.take(&answer);
    assert!(after.cookies.is_empty(), "{after:?}");

    // The cookie still decrypts, but the store no longer knows its session: it is over, for
    // whoever kept a copy.
    let browser =
        answered(edge.auth.check(&Requirement::Session, &Req::get("/").browser().cookies(&stolen).view()).await);
    assert_eq!(browser.status, 302);
    let api = answered(edge.auth.check(&Requirement::Session, &Req::get("/").cookies(&stolen).view()).await);
    assert_eq!(api.status, 401);

    // A GET logout (a plain link) works too, with or without a session.
    let answer = edge.auth.platform_path(&Req::get("/.tovuk/auth/logout").view()).await.expect("logout");
    assert_eq!(answer.status, 303);
}

#[tokio::test]
async fn jwt_mode_has_no_login() {
    let mut provider = Provider::start().await;
    let mut config = config(&provider);
    config.mode = AuthMode::Jwt;
    config.client_id = None;
    let edge = edge(config).await;
    let answer = answered(edge.auth.check(&Requirement::Session, &Req::get("/").browser().view()).await);
    assert_eq!(answer.status, 401, "a browser gets no redirect: there is no login");
    let login = edge.auth.platform_path(&Req::get("/.tovuk/auth/login").view()).await.expect("ours");
    assert_eq!(login.status, 404);
    assert!(error_of(&login).1.contains(&format!("`{APP}` takes bearer tokens only")));
    let token = provider.mint(json!({})).await;
    assert!(passed(edge.auth.check(&Requirement::Session, &Req::get("/").bearer(&token).view()).await).is_some());
    assert_eq!(edge.auth.cookie_security(), "no cookies (bearer tokens only)");
}
