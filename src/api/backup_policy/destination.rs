//! Where a BackupPolicy stores its backups, and their client-side encryption.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::common::{HTTP_URL_PATTERN, SecretKeyRef};

/// Where backups are stored. Exactly one member is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "[has(self.s3), has(self.gcs), has(self.azureBlob), has(self.pvc)].filter(x, x).size() == 1",
    "message": "exactly one of s3, gcs, azureBlob or pvc must be set"
}]))]
pub struct BackupDestination {
    /// S3-compatible object storage: AWS S3, Supabase Storage, MinIO, Cloudflare R2, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Destination>,
    /// Google Cloud Storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcs: Option<GcsDestination>,
    /// Azure Blob Storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_blob: Option<AzureBlobDestination>,
    /// A directory on a PersistentVolumeClaim mounted into the backup Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc: Option<PvcDestination>,
}

/// An S3-compatible bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.accessKeyIdSecretRef) == has(self.secretAccessKeySecretRef)",
    "message": "accessKeyIdSecretRef and secretAccessKeySecretRef are set together (or neither, for workload identity)"
}]))]
pub struct S3Destination {
    /// Bucket name.
    #[schemars(
        length(min = 3, max = 63),
        regex(pattern = r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
    )]
    pub bucket: String,
    /// Key prefix every object of this policy lives under, e.g. `postgres/production/`. The
    /// policy lists and prunes only under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024), regex(pattern = r"^[^/]"))]
    pub prefix: Option<String>,
    /// Endpoint URL for non-AWS services, e.g. `https://<project>.supabase.co/storage/v1/s3`,
    /// `http://minio.storage:9000` or an R2 account endpoint. AWS when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = HTTP_URL_PATTERN))]
    pub endpoint: Option<String>,
    /// Region, e.g. `us-east-2`; some S3-compatible services want `auto` or any value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub region: Option<String>,
    /// Address buckets as `endpoint/bucket` instead of `bucket.endpoint` (MinIO, Supabase).
    #[serde(default)]
    pub force_path_style: bool,
    /// Secret key holding the access key id. Unset (with the secret key) to use the Job's
    /// workload identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id_secret_ref: Option<SecretKeyRef>,
    /// Secret key holding the secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key_secret_ref: Option<SecretKeyRef>,
}

/// A Google Cloud Storage bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcsDestination {
    /// Bucket name.
    #[schemars(
        length(min = 3, max = 222),
        regex(pattern = r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")
    )]
    pub bucket: String,
    /// Object name prefix every object of this policy lives under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024), regex(pattern = r"^[^/]"))]
    pub prefix: Option<String>,
    /// Secret key holding a service account JSON key. Unset to use workload identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_key_secret_ref: Option<SecretKeyRef>,
}

/// An Azure Blob Storage container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureBlobDestination {
    /// Storage account name.
    #[schemars(length(min = 3, max = 24), regex(pattern = r"^[a-z0-9]+$"))]
    pub account: String,
    /// Container name.
    #[schemars(
        length(min = 3, max = 63),
        regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
    )]
    pub container: String,
    /// Blob name prefix every object of this policy lives under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024), regex(pattern = r"^[^/]"))]
    pub prefix: Option<String>,
    /// Secret key holding the storage account key. Unset to use workload identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_key_secret_ref: Option<SecretKeyRef>,
    /// Endpoint override, e.g. an Azurite emulator. The public cloud when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = HTTP_URL_PATTERN))]
    pub endpoint: Option<String>,
}

/// A directory on a PersistentVolumeClaim in the policy's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PvcDestination {
    /// Name of the PersistentVolumeClaim; it must allow the backup and verification Jobs to
    /// mount it (ReadWriteMany, or ReadWriteOnce when they run on one node).
    #[schemars(length(min = 1, max = 253))]
    pub claim_name: String,
    /// Directory inside the volume, relative to its root; the root when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024), regex(pattern = r"^[^/]"))]
    pub path: Option<String>,
}

/// Client-side encryption of dumps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupEncryption {
    /// Secret key holding the encryption key (a passphrase or key file). Losing it makes every
    /// backup unreadable: keep a copy outside the cluster.
    pub key_secret_ref: SecretKeyRef,
}
