//! Edge auth against a real OIDC provider process (npm's oauth2-mock-server on loopback):
//! bearer tokens good and forged, the browser login through the provider and back, sessions,
//! CSRF, logout, and the provider going away.

mod bearer;
mod outage;
mod sessions;
mod store;
mod support;
