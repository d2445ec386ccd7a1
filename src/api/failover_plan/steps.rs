//! The steps of a FailoverPlan (and of its failback): one action each, with timeout, retries
//! with backoff, and continue-on-error.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::api::common::{
    ConfigMapValue, DNS_LABEL_PATTERN, Duration, HTTP_URL_PATTERN, HttpHeader, HttpMethod,
    LocalObjectRef, PostgresConnection, SecretKeyRef, Severity, WorkloadRef,
};

/// One step. Exactly one action member is set; the others describe how it runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "[has(self.fence), has(self.restoreBackup), has(self.sql), has(self.kubernetesScale), has(self.kubernetesPatch), has(self.kubernetesRollback), has(self.dnsSwitch), has(self.http), has(self.verify), has(self.notify)].filter(x, x).size() == 1",
    "message": "exactly one action (fence, restoreBackup, sql, kubernetesScale, kubernetesPatch, kubernetesRollback, dnsSwitch, http, verify or notify) must be set"
}]))]
pub struct Step {
    /// Name, unique in the procedure, shown in status and events, e.g. `promote-database`.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = DNS_LABEL_PATTERN)
    )]
    pub name: String,
    /// Upper bound of one try of the step.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Tries after the first one fails (0 to 10).
    #[serde(default)]
    #[schemars(range(min = 0, max = 10))]
    pub retries: u32,
    /// Wait before the first retry; doubled for each further retry.
    #[serde(default = "default_backoff")]
    pub backoff: Duration,
    /// Carry on with the next step when this one finally fails (e.g. a notification); the
    /// attempt fails otherwise.
    #[serde(default)]
    pub continue_on_error: bool,
    /// Stop the primary from taking writes before anything is promoted (split-brain guard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<FenceAction>,
    /// Restore a BackupPolicy's backup into a database, as a Job running the restore agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_backup: Option<RestoreBackupAction>,
    /// Run SQL, e.g. `SELECT pg_promote()`, and check the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<SqlAction>,
    /// Set a Deployment's or StatefulSet's replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_scale: Option<ScaleAction>,
    /// Merge-patch a Kubernetes object (environment config, the connection-string reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_patch: Option<PatchAction>,
    /// Roll a Deployment or StatefulSet back to an earlier revision (a bad release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_rollback: Option<RollbackAction>,
    /// Point a DNS record at the secondary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_switch: Option<DnsSwitchAction>,
    /// Call an HTTP API, e.g. a hosting provider's deploy or rollback endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpAction>,
    /// Wait until a HealthMonitor reports Healthy for several probes in a row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyAction>,
    /// Send a message through the plan's alert channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifyAction>,
}

fn default_timeout() -> Duration {
    Duration::new("10m")
}

fn default_backoff() -> Duration {
    Duration::new("10s")
}

impl Step {
    /// Names of the action members that are set, in declaration order.
    pub fn actions(&self) -> Vec<&'static str> {
        [
            ("fence", self.fence.is_some()),
            ("restoreBackup", self.restore_backup.is_some()),
            ("sql", self.sql.is_some()),
            ("kubernetesScale", self.kubernetes_scale.is_some()),
            ("kubernetesPatch", self.kubernetes_patch.is_some()),
            ("kubernetesRollback", self.kubernetes_rollback.is_some()),
            ("dnsSwitch", self.dns_switch.is_some()),
            ("http", self.http.is_some()),
            ("verify", self.verify.is_some()),
            ("notify", self.notify.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// Fencing of the primary. Exactly one member is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "[has(self.scaleToZero), has(self.configMapSet), has(self.webhook)].filter(x, x).size() == 1",
    "message": "exactly one of scaleToZero, configMapSet or webhook must be set"
}]))]
pub struct FenceAction {
    /// Scale the primary's workload to zero replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_to_zero: Option<WorkloadRef>,
    /// Set a flag the application honours (e.g. `WRITES_DISABLED=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_set: Option<ConfigMapValue>,
    /// Call an endpoint that fences the primary (a provider's pause or read-only API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<HttpAction>,
}

/// Restore of a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreBackupAction {
    /// The BackupPolicy whose storage holds the backup.
    pub backup_policy_ref: LocalObjectRef,
    /// A specific backup id; the newest verified backup when unset (the newest complete one
    /// if none is verified and the stale-backup gate was approved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub backup_id: Option<String>,
    /// The database restored into (the secondary's, or a new one).
    pub target_database: PostgresConnection,
    /// Restore even if the target already has tables (objects are dropped and recreated).
    /// Refused otherwise, so a mistyped target does not lose data.
    #[serde(default)]
    pub allow_non_empty_target: bool,
}

/// SQL statements with an optional expected result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SqlAction {
    /// The database; credentials only by Secret reference.
    pub connection: PostgresConnection,
    /// Statements run in order, each in its own transaction.
    #[schemars(length(min = 1, max = 20), inner(length(min = 1, max = 65536)))]
    pub statements: Vec<String>,
    /// Expected text of the first column of the first row of the last statement, e.g. `t`
    /// for `SELECT pg_promote()`. Unset accepts any result that is not an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub expect: Option<String>,
    /// PostgreSQL `statement_timeout` for each statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_timeout: Option<Duration>,
}

/// Replicas of a workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleAction {
    /// The Deployment or StatefulSet.
    pub workload_ref: WorkloadRef,
    /// Desired replicas.
    #[schemars(range(min = 0))]
    pub replicas: i32,
}

/// A rollback of a workload to an earlier revision of its pod template, as `kubectl rollout
/// undo` does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackAction {
    /// The Deployment or StatefulSet.
    pub workload_ref: WorkloadRef,
    /// Revision to return to; the one before the current when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub to_revision: Option<i64>,
}

/// A JSON merge patch (RFC 7386) of one object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchAction {
    /// The object patched, in the plan's namespace.
    pub target: PatchTarget,
    /// The merge patch, e.g. `{"data": {"DATABASE_REGION": "us-west-1"}}` for a ConfigMap or a
    /// Deployment's `secretRef` switched to the secondary's connection Secret.
    #[schemars(schema_with = "merge_patch_schema")]
    pub merge_patch: serde_json::Map<String, serde_json::Value>,
}

/// Any object in the plan's namespace, by API version, kind and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchTarget {
    /// API version, e.g. `apps/v1` or `v1`.
    #[schemars(length(min = 1, max = 253))]
    pub api_version: String,
    /// Kind, e.g. `Deployment` or `ConfigMap`. Not `Secret`: secret values are never written
    /// into a plan (patch the reference to a Secret instead).
    #[schemars(length(min = 1, max = 63))]
    pub kind: String,
    /// Object name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Schema of a free-form merge patch: an object whose content the API server keeps as given.
fn merge_patch_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "JSON merge patch (RFC 7386) applied to the target.",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// A DNS switch. Exactly one member is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "[has(self.cloudflare), has(self.dnsEndpoint), has(self.webhook)].filter(x, x).size() == 1",
    "message": "exactly one of cloudflare, dnsEndpoint or webhook must be set"
}]))]
pub struct DnsSwitchAction {
    /// Update a record through Cloudflare's API (the record is looked up by name and type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudflare: Option<CloudflareRecord>,
    /// Write an external-dns `DNSEndpoint` object (external-dns then updates the provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_endpoint: Option<DnsEndpointRecord>,
    /// Call an endpoint that switches DNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<HttpAction>,
}

/// DNS record types a switch may set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DnsRecordType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    #[serde(rename = "AAAA")]
    Aaaa,
    /// Alias to another name.
    #[serde(rename = "CNAME")]
    Cname,
}

/// A Cloudflare DNS record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloudflareRecord {
    /// Zone id (from the zone's overview page).
    #[schemars(length(min = 1, max = 64))]
    pub zone_id: String,
    /// Full record name, e.g. `app.example.com`.
    #[schemars(length(min = 1, max = 253))]
    pub record_name: String,
    /// Record type.
    pub record_type: DnsRecordType,
    /// New content: an address for A/AAAA, a host name for CNAME, e.g.
    /// `us-west.app.example.net`.
    #[schemars(length(min = 1, max = 253))]
    pub content: String,
    /// TTL in seconds: 1 means automatic, otherwise 60 to 86400. Short TTLs make the switch
    /// take effect sooner.
    #[serde(default = "default_ttl")]
    #[schemars(range(min = 1, max = 86400))]
    pub ttl: u32,
    /// Whether the record is proxied through Cloudflare.
    #[serde(default)]
    pub proxied: bool,
    /// Secret key holding an API token with DNS edit permission on the zone.
    pub api_token_secret_ref: SecretKeyRef,
    /// API base URL; `https://api.cloudflare.com/client/v4` when unset (tests point it at a
    /// local server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = HTTP_URL_PATTERN))]
    pub api_url: Option<String>,
}

fn default_ttl() -> u32 {
    60
}

/// An external-dns `DNSEndpoint` (externaldns.k8s.io/v1alpha1) the step creates or updates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsEndpointRecord {
    /// Name of the DNSEndpoint object in the plan's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// DNS name, e.g. `app.example.com`.
    #[schemars(length(min = 1, max = 253))]
    pub dns_name: String,
    /// Record type.
    pub record_type: DnsRecordType,
    /// Targets: addresses or a host name.
    #[schemars(length(min = 1, max = 10), inner(length(min = 1, max = 253)))]
    pub targets: Vec<String>,
    /// TTL in seconds; the provider's default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub ttl: Option<u32>,
}

/// An HTTP request whose response status decides success.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpAction {
    /// Absolute URL.
    #[schemars(length(min = 1, max = 2048), regex(pattern = HTTP_URL_PATTERN))]
    pub url: String,
    /// Request method; `POST` when unset.
    #[serde(default = "default_method")]
    pub method: HttpMethod,
    /// Request headers; credentials (`Authorization`, API keys) only through `valueFrom`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub headers: Vec<HttpHeader>,
    /// Request body, e.g. a JSON document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub body: Option<String>,
    /// Accepted statuses: codes (`200`), classes (`2xx`) or ranges (`200-299`). Any 2xx when
    /// empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 20),
        inner(regex(pattern = r"^([1-5][0-9][0-9](-[1-5][0-9][0-9])?|[1-5]xx)$"))
    )]
    pub expected_status: Vec<String>,
}

fn default_method() -> HttpMethod {
    HttpMethod::Post
}

/// Verification through a HealthMonitor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyAction {
    /// The monitor to watch; the secondary's `healthMonitorRef` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_monitor_ref: Option<LocalObjectRef>,
    /// Healthy probes in a row needed (the step's timeout bounds the wait).
    #[serde(default = "default_consecutive")]
    #[schemars(range(min = 1, max = 100))]
    pub consecutive_healthy: u32,
}

fn default_consecutive() -> u32 {
    3
}

/// A message to people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifyAction {
    /// The text, e.g. `Production moved to US West; check the status page`.
    #[schemars(length(min = 1, max = 2048))]
    pub message: String,
    /// Severity it is routed with; `P1` when unset.
    #[serde(default = "default_severity")]
    pub severity: Severity,
}

fn default_severity() -> Severity {
    Severity::P1
}
