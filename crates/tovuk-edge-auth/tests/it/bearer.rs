//! Bearer tokens: what the provider issues passes with identity headers; expired, foreign,
//! unsigned, key-confused, tampered and unknown-key tokens are refused with a reason.

use crate::support::{AUDIENCE, Provider, Req, answered, config, edge, error_of, now, passed, payload};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::WWW_AUTHENTICATE;
use serde_json::json;
use std::time::Duration;
use tovuk_edge_auth::{AuthMethod, Decision, Requirement};

/// The 401's `WWW-Authenticate` and error message, for a request with `token`.
async fn refused(edge: &crate::support::Edge, token: &str) -> (String, String) {
    let answer = answered(edge.auth.check(&Requirement::Session, &Req::get("/api/orders").bearer(token).view()).await);
    assert_eq!(answer.status, 401);
    let challenge = answer.headers[WWW_AUTHENTICATE].to_str().expect("ASCII").to_owned();
    assert!(
        challenge.starts_with("Bearer realm=\"shop\", error=\"invalid_token\", error_description=\""),
        "{challenge}"
    );
    let (code, message) = error_of(&answer);
    assert_eq!(code, "invalid_token");
    (challenge, message)
}

#[tokio::test]
async fn a_token_from_the_provider_passes_with_identity_headers() {
    let mut provider = Provider::start().await;
    let edge = edge(config(&provider)).await;
    let token =
        provider.token_endpoint(json!({"sub": "alice", "capabilities": ["orders:read", "orders:write"]}), "api").await;
    assert_eq!(payload(&token)["aud"], AUDIENCE);

    let request = Req::get("/api/orders").bearer(&token);
    let identity = passed(edge.auth.check(&Requirement::Session, &request.view()).await).expect("an identity");
    assert_eq!(identity.subject, "alice");
    assert_eq!(identity.capabilities, ["orders:read", "orders:write"]);
    assert_eq!(identity.method, AuthMethod::Bearer);
    let headers = identity.headers();
    assert_eq!(headers["tovuk-auth-subject"], "alice");
    assert_eq!(headers["tovuk-auth-capabilities"], "orders:read,orders:write");
    assert_eq!(headers["tovuk-auth-method"], "bearer");
    assert!(headers.keys().all(|name| name.as_str().starts_with(tovuk_edge_auth::IDENTITY_HEADER_PREFIX)));

    let optional = passed(edge.auth.check(&Requirement::Optional, &request.view()).await);
    assert_eq!(optional.map(|identity| identity.subject).as_deref(), Some("alice"));
    let capable = Requirement::Capability("orders:write".to_owned());
    assert!(passed(edge.auth.check(&capable, &request.view()).await).is_some());

    let admin = Requirement::Capability("admin".to_owned());
    let answer = answered(edge.auth.check(&admin, &request.view()).await);
    assert_eq!(answer.status, 403);
    let (code, message) = error_of(&answer);
    assert_eq!(code, "capability_missing");
    assert!(message.contains("/api/orders needs capability `admin`"), "{message}");
    assert!(message.contains("the token grants: orders:read, orders:write"), "{message}");
}

#[tokio::test]
async fn capabilities_can_be_a_space_separated_scope() {
    let mut provider = Provider::start().await;
    let mut config = config(&provider);
    config.capability_claim = Some("scope".to_owned());
    let edge = edge(config).await;
    let token = provider.token_endpoint(json!({"sub": "ci-bot"}), "deploy read").await;
    let deploy = Requirement::Capability("deploy".to_owned());
    let identity = passed(edge.auth.check(&deploy, &Req::post("/deploy").bearer(&token).view()).await);
    assert_eq!(identity.expect("identity").capabilities, ["deploy", "read"]);

    let none = provider.token_endpoint(json!({"sub": "ci-bot"}), "read").await;
    let (code, message) =
        error_of(&answered(edge.auth.check(&deploy, &Req::post("/deploy").bearer(&none).view()).await));
    assert_eq!(
        (code.as_str(), message.contains("grants: read (claim `scope`)")),
        ("capability_missing", true),
        "{message}"
    );
}

#[tokio::test]
async fn expired_foreign_and_tampered_tokens_are_refused() {
    let mut provider = Provider::start().await;
    let edge = edge(config(&provider)).await;
    let now = now();

    // Within the 60 s leeway: still good.
    let lately = provider.mint(json!({"exp": now - 30})).await;
    assert!(passed(edge.auth.check(&Requirement::Session, &Req::get("/").bearer(&lately).view()).await).is_some());

    let expired = provider.mint(json!({"exp": now - 120, "nbf": now - 600})).await;
    let (challenge, _) = refused(&edge, &expired).await;
    assert!(challenge.contains("the token has expired"), "{challenge}");

    let early = provider.mint(json!({"nbf": now + 600})).await;
    assert!(refused(&edge, &early).await.1.contains("not valid yet"));

    let foreign = provider.mint(json!({"iss": "https://evil.example"})).await;
    let (_, message) = refused(&edge, &foreign).await;
    assert!(message.contains(&format!("the token's issuer is not {}", provider.issuer)), "{message}");

    let elsewhere = provider.mint(json!({"aud": "another-api"})).await;
    assert!(refused(&edge, &elsewhere).await.1.contains("audience does not include `shop-api`"));

    let no_expiry = provider.mint_with(json!({"claims": {"sub": "a", "aud": AUDIENCE}, "unset": ["exp"]})).await;
    assert!(refused(&edge, &no_expiry).await.1.contains("no `exp` claim"));

    let nobody = provider.mint_with(json!({"claims": {"aud": AUDIENCE}, "kid": provider.kid.clone()})).await;
    assert!(refused(&edge, &nobody).await.1.contains("no `sub` claim"));

    // A valid token whose payload is swapped for one naming someone else.
    let good = provider.mint(json!({"sub": "alice"})).await;
    let mut claims = payload(&good);
    claims["sub"] = json!("admin");
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2]);
    assert!(refused(&edge, &tampered).await.1.contains("signature does not verify"));

    assert!(refused(&edge, "not-a-jwt").await.1.contains("three dot-separated parts"));
}

#[tokio::test]
async fn unsigned_symmetric_and_mismatched_algorithms_are_refused() {
    let mut provider = Provider::start().await;
    let edge = edge(config(&provider)).await;
    let claims = json!({"iss": provider.issuer, "aud": AUDIENCE, "sub": "admin", "exp": now() + 600});

    // alg none, naming the provider's real key.
    let header = json!({"alg": "none", "typ": "JWT", "kid": provider.kid});
    let unsigned =
        format!("{}.{}.", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    assert!(refused(&edge, &unsigned).await.1.contains("alg `none`"));

    // The key-confusion forgery: HS256 with the provider's RSA public key (PEM, as a verifier
    // that trusts the header would load it) as the HMAC secret.
    let pem =
        provider.call(json!({"op": "public_pem", "kid": provider.kid})).await["pem"].as_str().expect("pem").to_owned();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(provider.kid.clone());
    let forged = jsonwebtoken::encode(
        &hs_header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(pem.as_bytes()).expect("HMAC key"),
    )
    .expect("forged token");
    assert!(refused(&edge, &forged).await.1.contains("alg `HS256` is refused"));

    // Really signed with the provider's RS256 key, but the header says RS384.
    let header = json!({"alg": "RS384", "typ": "JWT", "kid": provider.kid});
    let kid = provider.kid.clone();
    let mismatched =
        provider.call(json!({"op": "sign", "header": header, "payload": claims, "kid": kid})).await["token"]
            .as_str()
            .expect("token")
            .to_owned();
    assert!(refused(&edge, &mismatched).await.1.contains("alg RS384 does not match key"));

    // The same claims signed properly pass: the refusals above were about the algorithm.
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": provider.kid});
    let kid = provider.kid.clone();
    let proper = provider.call(json!({"op": "sign", "header": header, "payload": claims, "kid": kid})).await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert!(passed(edge.auth.check(&Requirement::Session, &Req::get("/").bearer(&proper).view()).await).is_some());
}

#[tokio::test]
async fn an_unknown_key_refreshes_the_keys_once_and_a_rotated_key_is_picked_up() {
    let mut provider = Provider::start().await;
    let edge = edge(config(&provider)).await;
    let good = provider.mint(json!({})).await;
    assert!(passed(edge.auth.check(&Requirement::Session, &Req::get("/").bearer(&good).view()).await).is_some());
    assert_eq!(provider.jwks_requests().await, 1);

    // A kid the provider never had: the keys are fetched again, then the token is refused.
    let unknown =
        provider.mint_with(json!({"claims": {"sub": "a", "aud": AUDIENCE}, "header": {"kid": "k-nope"}})).await;
    assert!(refused(&edge, &unknown).await.1.contains("the provider has no key `k-nope`"));
    assert_eq!(provider.jwks_requests().await, 2);

    // The provider rotates: a token signed with the new key passes after one refresh.
    let new_kid = provider.call(json!({"op": "rotate"})).await["kid"].as_str().expect("kid").to_owned();
    let rotated = provider.mint_with(json!({"claims": {"sub": "bob", "aud": AUDIENCE}, "kid": new_kid})).await;
    let identity = passed(edge.auth.check(&Requirement::Session, &Req::get("/").bearer(&rotated).view()).await);
    assert_eq!(identity.expect("identity").subject, "bob");
    assert_eq!(provider.jwks_requests().await, 3);
    // Known keys are not fetched again.
    assert!(passed(edge.auth.check(&Requirement::Session, &Req::get("/").bearer(&good).view()).await).is_some());
    assert_eq!(provider.jwks_requests().await, 3);
}

#[tokio::test]
async fn unknown_keys_refresh_at_most_once_per_interval() {
    let mut provider = Provider::start().await;
    let mut config = config(&provider);
    config.refetch_interval = Duration::from_millis(1500);
    let edge = edge(config).await;
    let good = provider.mint(json!({})).await;
    assert!(passed(edge.auth.check(&Requirement::Session, &Req::get("/").bearer(&good).view()).await).is_some());

    let new_kid = provider.call(json!({"op": "rotate"})).await["kid"].as_str().expect("kid").to_owned();
    let rotated = provider.mint_with(json!({"claims": {"sub": "bob", "aud": AUDIENCE}, "kid": new_kid})).await;
    // A flood of made-up kids right after a refresh reaches the provider not at all.
    for attempt in 0..5 {
        let junk = provider
            .mint_with(json!({"claims": {"sub": "a", "aud": AUDIENCE}, "header": {"kid": format!("junk-{attempt}")}}))
            .await;
        refused(&edge, &junk).await;
    }
    refused(&edge, &rotated).await;
    assert_eq!(provider.jwks_requests().await, 1);

    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(passed(edge.auth.check(&Requirement::Session, &Req::get("/").bearer(&rotated).view()).await).is_some());
    assert_eq!(provider.jwks_requests().await, 2);
}

#[tokio::test]
async fn optional_routes_pass_bad_or_missing_credentials_as_anonymous() {
    let mut provider = Provider::start().await;
    let edge = edge(config(&provider)).await;
    let expired = provider.mint(json!({"exp": now() - 3600})).await;
    for request in [Req::get("/"), Req::get("/").bearer(&expired), Req::get("/").bearer("garbage")] {
        assert_eq!(passed(edge.auth.check(&Requirement::Optional, &request.view()).await), None);
    }

    // The same without credentials on a session route, from an API client: a bare challenge.
    let answer = answered(edge.auth.check(&Requirement::Session, &Req::get("/api").view()).await);
    assert_eq!(answer.status, 401);
    assert_eq!(answer.headers[WWW_AUTHENTICATE], "Bearer realm=\"shop\"");
    assert_eq!(error_of(&answer).0, "unauthorized");
    let capability = Requirement::Capability("x".to_owned());
    assert!(
        matches!(edge.auth.check(&capability, &Req::get("/api").view()).await, Decision::Answer(a) if a.status == 401)
    );
}
