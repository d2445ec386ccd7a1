//! Probe settings read from the cluster: the Secrets and ConfigMaps a HealthMonitor references,
//! read per reconcile (nothing cached between reconciles, so a rotated Secret is taken up on the
//! next one) and never logged.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Client;
use kube::api::Api;

use super::RESOLVE_ROUNDS;
use crate::api::HealthMonitor;
use crate::monitor::{
    Environment, MonitorConfig, MonitorError, MonitorKey, SecretResolver, monitor_config,
};

/// Adapts a HealthMonitor for the cluster, reading the Secrets (and ConfigMaps) it references
/// from its namespace.
pub(super) async fn adapt(
    client: &Client,
    key: &MonitorKey,
    object: &HealthMonitor,
) -> Result<MonitorConfig, MonitorError> {
    let mut fetched = Fetched::default();
    for _ in 0..RESOLVE_ROUNDS {
        let result = monitor_config(key, &object.spec, Environment::Cluster, &fetched);
        let wanted: Vec<Wanted> = fetched
            .missed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        if wanted.is_empty() {
            return result;
        }
        for want in wanted {
            let value = fetch(client, &key.namespace, &want).await;
            fetched.values.insert(want, value);
        }
    }
    monitor_config(key, &object.spec, Environment::Cluster, &fetched)
}

/// A Secret or ConfigMap key the adapter asked for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Wanted {
    Secret(String, String),
    ConfigMap(String, String),
}

/// Values read so far (per reconcile: nothing is cached between reconciles, so a rotated
/// Secret is taken up on the next one). Never logged.
#[derive(Default)]
struct Fetched {
    values: BTreeMap<Wanted, Result<String, String>>,
    missed: Mutex<Vec<Wanted>>,
}

impl Fetched {
    fn lookup(&self, want: Wanted) -> Result<String, MonitorError> {
        let (name, key) = match &want {
            Wanted::Secret(n, k) | Wanted::ConfigMap(n, k) => (n.clone(), k.clone()),
        };
        match self.values.get(&want) {
            Some(Ok(value)) => Ok(value.clone()),
            Some(Err(message)) => Err(MonitorError::Secret {
                name,
                key,
                message: message.clone(),
            }),
            None => {
                self.missed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(want);
                Err(MonitorError::Secret {
                    name,
                    key,
                    message: "not read yet".to_string(),
                })
            }
        }
    }
}

impl SecretResolver for Fetched {
    fn get(&self, name: &str, key: &str) -> Result<String, MonitorError> {
        self.lookup(Wanted::Secret(name.to_string(), key.to_string()))
    }

    fn config_map(&self, name: &str, key: &str) -> Result<String, MonitorError> {
        self.lookup(Wanted::ConfigMap(name.to_string(), key.to_string()))
    }
}

async fn fetch(client: &Client, namespace: &str, want: &Wanted) -> Result<String, String> {
    match want {
        Wanted::Secret(name, key) => {
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            let secret = api
                .get_opt(name)
                .await
                .map_err(|e| format!("cannot be read: {e}"))?
                .ok_or_else(|| "the Secret does not exist".to_string())?;
            if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
                return String::from_utf8(bytes.0.clone())
                    .map_err(|_| "the value is not UTF-8".to_string());
            }
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .cloned()
                .ok_or_else(|| "the Secret has no such key".to_string())
        }
        Wanted::ConfigMap(name, key) => {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
            let map = api
                .get_opt(name)
                .await
                .map_err(|e| format!("cannot be read: {e}"))?
                .ok_or_else(|| "the ConfigMap does not exist".to_string())?;
            map.data
                .as_ref()
                .and_then(|d| d.get(key))
                .cloned()
                .ok_or_else(|| "the ConfigMap has no such key".to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unread_keys_are_recorded_and_errors_never_carry_values() {
        let mut fetched = Fetched::default();
        let error = fetched.get("token", "key").unwrap_err();
        assert!(error.to_string().contains("token/key"), "{error}");
        assert_eq!(
            *fetched.missed.lock().unwrap(),
            [Wanted::Secret("token".into(), "key".into())]
        );
        fetched.values.insert(
            Wanted::Secret("token".into(), "key".into()),
            Ok("hunter2".into()),
        );
        fetched.values.insert(
            Wanted::ConfigMap("token".into(), "key".into()),
            Err("the ConfigMap does not exist".into()),
        );
        assert_eq!(fetched.get("token", "key").unwrap(), "hunter2");
        let error = fetched.config_map("token", "key").unwrap_err().to_string();
        assert!(
            error.contains("does not exist") && !error.contains("hunter2"),
            "{error}"
        );
    }
}
