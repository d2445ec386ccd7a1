//! The alert engine's configuration for a spec's `alerting`, with the Secrets its channels
//! reference read from the API: shared by every controller that sends notices (maintenance
//! windows, failover `notify` steps).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;

use crate::api::common::AlertingSpec;
use crate::monitor::adapter::alerting_config;
use crate::monitor::{MonitorError, SecretResolver};

/// Rounds of "build, read the Secrets it asked for": each round reads every Secret the
/// configuration named so far, so a handful suffice.
const ROUNDS: usize = 8;

/// The engine configuration, reading the Secrets the channels reference.
pub async fn resolve(
    client: &Client,
    namespace: &str,
    spec: &AlertingSpec,
) -> Result<crate::alert::AlertingConfig, MonitorError> {
    let mut fetched = Fetched::default();
    for _ in 0..ROUNDS {
        let result = alerting_config(spec, &fetched);
        let wanted: Vec<(String, String)> = fetched
            .missed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        if wanted.is_empty() {
            return result;
        }
        for (name, key) in wanted {
            let value = read_secret(client, namespace, &name, &key).await;
            fetched.values.insert((name, key), value);
        }
    }
    alerting_config(spec, &fetched)
}

/// Secret values read so far; never logged.
#[derive(Default)]
struct Fetched {
    values: BTreeMap<(String, String), Result<String, String>>,
    missed: Mutex<Vec<(String, String)>>,
}

impl SecretResolver for Fetched {
    fn get(&self, name: &str, key: &str) -> Result<String, MonitorError> {
        let id = (name.to_string(), key.to_string());
        let error = |message: String| MonitorError::Secret {
            name: name.to_string(),
            key: key.to_string(),
            message,
        };
        match self.values.get(&id) {
            Some(Ok(value)) => Ok(value.clone()),
            Some(Err(message)) => Err(error(message.clone())),
            None => {
                self.missed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(id);
                Err(error("not read yet".into()))
            }
        }
    }
}

/// One key of a Secret in `namespace`, or why it cannot be had (never the value itself).
pub async fn read_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<String, String> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|e| format!("cannot be read: {e}"))?
        .ok_or_else(|| "the Secret does not exist".to_string())?;
    if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return String::from_utf8(bytes.0.clone()).map_err(|_| "the value is not UTF-8".into());
    }
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .cloned()
        .ok_or_else(|| "the Secret has no such key".into())
}
