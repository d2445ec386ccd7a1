//! Server-side apply of the owned CronJob, and the checks that must pass before anything is
//! created: the Secrets the trigger container mounts must exist (a missing one would only
//! surface hours later, as a Pod stuck in `CreateContainerConfigError`).

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};

use super::Error;
use crate::api::FieldError;
use crate::api::common::SecretKeyRef;
use crate::api::cron_job_spec::CronJobSpecSpec;
use crate::controller::context::FIELD_MANAGER;

/// The Secret keys a CronJobSpec's pods read, each with the field that names it.
pub fn referenced_secrets(spec: &CronJobSpecSpec) -> Vec<(String, SecretKeyRef)> {
    let Some(trigger) = &spec.http_trigger else {
        return Vec::new();
    };
    let mut refs = Vec::new();
    if let Some(secret) = &trigger.bearer_token_secret_ref {
        refs.push((
            "spec.httpTrigger.bearerTokenSecretRef".to_string(),
            secret.clone(),
        ));
    }
    for (i, header) in trigger.headers.iter().enumerate() {
        if let Some(from) = &header.value_from {
            refs.push((
                format!("spec.httpTrigger.headers[{i}].valueFrom.secretKeyRef"),
                from.secret_key_ref.clone(),
            ));
        }
    }
    refs
}

/// One error per referenced Secret (or key) that does not exist in `namespace`. Values are
/// never read into messages; only names and keys appear.
pub async fn missing_secrets(
    client: &Client,
    namespace: &str,
    spec: &CronJobSpecSpec,
) -> Result<Vec<FieldError>, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut errors = Vec::new();
    for (path, reference) in referenced_secrets(spec) {
        let secret = api
            .get_opt(&reference.name)
            .await
            .map_err(|source| Error::ReadSecret {
                namespace: namespace.to_string(),
                name: reference.name.clone(),
                source: Box::new(source),
            })?;
        let message = match secret {
            None => Some(format!(
                "Secret {:?} does not exist in namespace {namespace}",
                reference.name
            )),
            Some(secret) if !has_key(&secret, &reference.key) => Some(format!(
                "Secret {:?} has no key {:?}",
                reference.name, reference.key
            )),
            Some(_) => None,
        };
        if let Some(message) = message {
            errors.push(FieldError::new(path, message));
        }
    }
    Ok(errors)
}

fn has_key(secret: &Secret, key: &str) -> bool {
    secret.data.as_ref().is_some_and(|d| d.contains_key(key))
        || secret
            .string_data
            .as_ref()
            .is_some_and(|d| d.contains_key(key))
}

/// Applies `desired` with the controller's field manager, forcing ownership: a field someone
/// edited by hand is set back. A no-op apply changes nothing on the server (no new
/// resourceVersion, no watch event), so applying on every reconcile cannot loop.
pub async fn apply(client: &Client, desired: &CronJob) -> Result<CronJob, Error> {
    let namespace = desired.namespace().unwrap_or_default();
    let name = desired.name_any();
    let api: Api<CronJob> = Api::namespaced(client.clone(), &namespace);
    let mut body = desired.clone();
    // The typed object serializes without apiVersion/kind; server-side apply needs them.
    body.metadata.managed_fields = None;
    let value = apply_body(&body);
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&value),
    )
    .await
    .map_err(|source| Error::ApplyCronJob {
        namespace,
        name,
        source: Box::new(source),
    })
}

/// The apply body of a CronJob: the object with `apiVersion` and `kind`, without status.
pub fn apply_body(cron_job: &CronJob) -> serde_json::Value {
    let mut value = serde_json::to_value(cron_job).unwrap_or(serde_json::Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert("apiVersion".into(), "batch/v1".into());
        object.insert("kind".into(), "CronJob".into());
        object.remove("status");
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::cron_job_spec::CronJobSpec;

    fn spec(value: serde_json::Value) -> CronJobSpecSpec {
        let object: CronJobSpec = serde_json::from_value(serde_json::json!({
            "apiVersion": "watchkeeper.dev/v1alpha1", "kind": "CronJobSpec",
            "metadata": {"name": "a", "namespace": "ns"}, "spec": value
        }))
        .unwrap();
        object.spec
    }

    #[test]
    fn referenced_secrets_name_their_fields() {
        let s = spec(serde_json::json!({
            "schedule": "* * * * *",
            "httpTrigger": {
                "url": "https://x.example/a",
                "bearerTokenSecretRef": {"name": "cron", "key": "token"},
                "headers": [{"name": "X-A", "value": "1"},
                            {"name": "X-Key", "valueFrom": {"secretKeyRef": {"name": "k", "key": "v"}}}]
            }
        }));
        let refs = referenced_secrets(&s);
        let paths: Vec<&str> = refs.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.httpTrigger.bearerTokenSecretRef",
                "spec.httpTrigger.headers[1].valueFrom.secretKeyRef"
            ]
        );
        assert_eq!(refs[1].1.name, "k");
    }

    #[test]
    fn job_templates_reference_no_secrets_of_ours() {
        let s = spec(serde_json::json!({
            "schedule": "* * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}}}
        }));
        assert!(referenced_secrets(&s).is_empty());
    }

    #[test]
    fn apply_body_has_type_and_no_status() {
        let body = apply_body(&CronJob::default());
        assert_eq!(body["apiVersion"], "batch/v1");
        assert_eq!(body["kind"], "CronJob");
        assert!(body.get("status").is_none());
    }
}
