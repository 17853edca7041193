//! The daemon's answers on its control socket: status, what it runs,
//! credentials proved and stored in its own keyring, checked, deleted.

use std::sync::Arc;

use serde_json::json;

use super::{CredentialState, Shared, check_credentials};
use crate::control::{self, Request, Response};
use crate::credentials::{self, profile_key};

/// The control socket's answers.
pub fn handler(shared: Arc<Shared>) -> control::Handler {
    Arc::new(move |req: Request| {
        let shared = shared.clone();
        Box::pin(async move {
            match &req {
                Request::Status => {
                    let config = shared.config();
                    Response::ok(shared.status().to_json(&config))
                }
                Request::Info => info(&shared),
                Request::Reload => {
                    let r = shared.reload().await;
                    shared.rearm.notify_one();
                    if r.problems.is_empty() {
                        Response::ok(json!({"reloaded": true}))
                    } else {
                        Response::problem(
                            format!(
                                "config reload rejected; the previous config stays in force:\n{}",
                                r.problems.join("\n")
                            ),
                            "rejected",
                            Some("fix the problems, then reload again; an alert was mailed".into()),
                        )
                    }
                }
                Request::Set { profile, secret } => set(&shared, profile, secret).await,
                Request::Store { key, secret } => store(&shared, key, secret),
                Request::Delete { key } => match shared.store.delete(key) {
                    Ok(existed) => Response::ok(json!({"deleted": existed})),
                    Err(e) => Response::error(e.to_string()),
                },
                Request::Check { profile } => {
                    let ok =
                        check_credentials(&shared, std::slice::from_ref(profile), "on request")
                            .await;
                    let state = shared.status().credentials.get(profile).cloned();
                    match (ok, state) {
                        (true, Some(s)) => Response::ok(json!({"canary": s.canary})),
                        (_, s) => Response::error(
                            s.and_then(|s| s.error)
                                .unwrap_or_else(|| "check failed".into()),
                        ),
                    }
                }
            }
        })
    })
}

/// The config file the daemon runs, its profiles, and whether its keyring
/// can keep a secret (probed now, with a throw-away key).
fn info(shared: &Shared) -> Response {
    let config = shared.config();
    let path = shared.status().config_path.clone();
    let profiles: Vec<_> = config
        .credentials
        .iter()
        .map(|c| json!({"name": c.name, "username": c.username, "canary": c.canary}))
        .collect();
    let keyring = match shared.store.probe() {
        Ok(()) => json!({"usable": true, "where": shared.store.describe()}),
        Err(e) => json!({"usable": false, "reason": e.to_string(), "hint": e.hint()}),
    };
    Response::ok(json!({
        "config": std::fs::canonicalize(&path).unwrap_or(path),
        "profiles": profiles,
        "keyring": keyring,
    }))
}

/// Proves handed-over credentials with one canary login, then stores them.
async fn set(shared: &Shared, profile: &str, secret: &str) -> Response {
    let creds = match credentials::store::decode(secret) {
        Ok(c) => c,
        Err(e) => return Response::error(e.to_string()),
    };
    let config = shared.config();
    let proof = match credentials::prove(&config, profile, &creds).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(profile, "handed-over credentials not stored: {e}");
            return Response::problem(crate::error_chain(&e), e.kind(), e.hint());
        }
    };
    let key = profile_key(profile);
    if let Err(e) = shared.store.set(&key, &creds) {
        return Response::problem(e.to_string(), e.kind(), e.hint());
    }
    tracing::info!(profile, canary = %proof.canary, "credentials proved and stored");
    let now = shared.clock.now();
    shared.status().credentials.insert(
        profile.to_string(),
        CredentialState::ok(now, proof.canary.clone()),
    );
    shared.publish();
    Response::ok(json!({
        "stored": key,
        "canary": proof.canary,
        "kex": proof.negotiated.kex,
        "host_key": proof.negotiated.host_key,
        "where": shared.store.describe(),
    }))
}

/// Stores a secret proved by the client (the relay's password).
fn store(shared: &Shared, key: &str, secret: &str) -> Response {
    match credentials::store::decode(secret) {
        Err(e) => Response::error(e.to_string()),
        Ok(creds) => match shared.store.set(key, &creds) {
            Ok(()) => {
                tracing::info!(key, "credentials handed over and stored");
                if let Some(profile) = key.strip_prefix("credentials.") {
                    let now = shared.clock.now();
                    shared
                        .status()
                        .credentials
                        .insert(profile.to_string(), CredentialState::handed_over(now));
                }
                shared.publish();
                Response::ok(json!({"stored": key, "where": shared.store.describe()}))
            }
            Err(e) => Response::problem(e.to_string(), e.kind(), e.hint()),
        },
    }
}
