//! Destinations through the `object_store` crate: S3-compatible (endpoint, region, path-style,
//! keys from env), GCS, Azure Blob and a local directory (a mounted PVC). Only S3 (against
//! s3s-fs) and the filesystem are tested; GCS and Azure are configured through object_store's
//! builders and untested here.
//!
//! Everything this module reads, writes or deletes is directly under the policy's prefix.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};

use super::config::{ConfigError, DestinationConfig, secret_from_env};
use super::manifest::{MANIFEST_SUFFIX, Manifest};

/// Size of one multipart part (S3 requires at least 5 MiB except for the last).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploaded at once; with [`PART_SIZE`] this bounds the upload's memory.
pub const UPLOAD_CONCURRENCY: usize = 2;

/// Problems talking to the destination.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The destination configuration or a secret it names is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be built (bad endpoint, unusable directory).
    #[error("destination {destination}: {message}")]
    Setup {
        /// Where.
        destination: String,
        /// Why.
        message: String,
    },
    /// An operation on the store failed.
    #[error("destination {destination}: {action}: {source}")]
    Io {
        /// Where.
        destination: String,
        /// What was being done, e.g. `upload of 2026….dump`.
        action: String,
        /// The store's error.
        source: object_store::Error,
    },
}

/// An opened destination: the store plus the policy's prefix.
#[derive(Clone)]
pub struct Destination {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    display: String,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl Destination {
    /// Builds the store for `config`, reading credentials from the env vars it names.
    pub fn open(config: &DestinationConfig) -> Result<Self, StoreError> {
        let prefix = config.prefix().to_string();
        let (store, display): (Arc<dyn ObjectStore>, String) = match config {
            DestinationConfig::S3 {
                bucket,
                endpoint,
                region,
                force_path_style,
                access_key_id_env,
                secret_access_key_env,
                ..
            } => {
                let display = format!("s3://{bucket}/{prefix}");
                let mut builder = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(region.as_deref().unwrap_or("us-east-1"))
                    .with_virtual_hosted_style_request(!force_path_style);
                if let Some(endpoint) = endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                if let (Some(id_env), Some(key_env)) = (access_key_id_env, secret_access_key_env) {
                    builder = builder
                        .with_access_key_id(secret_from_env("destination.accessKeyIdEnv", id_env)?)
                        .with_secret_access_key(secret_from_env(
                            "destination.secretAccessKeyEnv",
                            key_env,
                        )?);
                }
                let store = builder.build().map_err(|e| StoreError::Setup {
                    destination: display.clone(),
                    message: e.to_string(),
                })?;
                (Arc::new(store), display)
            }
            DestinationConfig::Gcs {
                bucket,
                service_account_key_env,
                ..
            } => {
                let display = format!("gs://{bucket}/{prefix}");
                let mut builder =
                    object_store::gcp::GoogleCloudStorageBuilder::new().with_bucket_name(bucket);
                if let Some(env) = service_account_key_env {
                    builder = builder.with_service_account_key(secret_from_env(
                        "destination.serviceAccountKeyEnv",
                        env,
                    )?);
                }
                let store = builder.build().map_err(|e| StoreError::Setup {
                    destination: display.clone(),
                    message: e.to_string(),
                })?;
                (Arc::new(store), display)
            }
            DestinationConfig::AzureBlob {
                account,
                container,
                account_key_env,
                endpoint,
                ..
            } => {
                let display = format!("azure://{account}/{container}/{prefix}");
                let mut builder = object_store::azure::MicrosoftAzureBuilder::new()
                    .with_account(account)
                    .with_container_name(container);
                if let Some(env) = account_key_env {
                    builder =
                        builder.with_access_key(secret_from_env("destination.accountKeyEnv", env)?);
                }
                if let Some(endpoint) = endpoint {
                    builder = builder
                        .with_endpoint(endpoint.clone())
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                let store = builder.build().map_err(|e| StoreError::Setup {
                    destination: display.clone(),
                    message: e.to_string(),
                })?;
                (Arc::new(store), display)
            }
            DestinationConfig::Filesystem { path, .. } => {
                let display = format!("file://{path}/{prefix}");
                let setup = |message: String| StoreError::Setup {
                    destination: display.clone(),
                    message,
                };
                let root = std::path::Path::new(path);
                if !root.is_absolute() {
                    return Err(setup("the path must be absolute".to_string()));
                }
                if !root.is_dir() {
                    return Err(setup(
                        "the directory does not exist (is the volume mounted?)".to_string(),
                    ));
                }
                let store = object_store::local::LocalFileSystem::new_with_prefix(root)
                    .map_err(|e| setup(e.to_string()))?
                    .with_automatic_cleanup(true);
                (Arc::new(store), display)
            }
        };
        Ok(Destination {
            store,
            prefix,
            display,
        })
    }

    /// `s3://bucket/prefix`, `file:///dir/prefix`, … for messages.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Full path of `name` under the prefix.
    pub fn path(&self, name: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(name)
        } else {
            Path::from(format!("{}/{name}", self.prefix))
        }
    }

    fn io(&self, action: impl Into<String>) -> impl FnOnce(object_store::Error) -> StoreError {
        let destination = self.display.clone();
        let action = action.into();
        move |source| StoreError::Io {
            destination,
            action,
            source,
        }
    }

    /// Names of the objects directly under the prefix (not in sub-directories, which may be
    /// other policies' prefixes).
    pub async fn list_names(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let prefix = (!self.prefix.is_empty()).then(|| Path::from(self.prefix.as_str()));
        let listing = self
            .store
            .list_with_delimiter(prefix.as_ref())
            .await
            .map_err(self.io("listing"))?;
        Ok(listing
            .objects
            .into_iter()
            .filter_map(|o| Some((o.location.filename()?.to_string(), o.size)))
            .collect())
    }

    /// Our manifests directly under the prefix, oldest first. Objects that are not manifests
    /// of ours are skipped; with `policy` set, so are other policies' manifests.
    pub async fn list_manifests(&self, policy: Option<&str>) -> Result<Vec<Manifest>, StoreError> {
        let mut manifests = Vec::new();
        for (name, size) in self.list_names().await? {
            if !name.ends_with(MANIFEST_SUFFIX) || size > 64 * 1024 {
                continue;
            }
            let bytes = self.get_bytes(&name).await?;
            if let Some(manifest) = Manifest::parse(&bytes)
                && manifest.manifest_name() == name
                && policy.is_none_or(|p| manifest.policy == p)
            {
                manifests.push(manifest);
            }
        }
        manifests.sort_by(|a, b| {
            a.completed_at
                .cmp(&b.completed_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(manifests)
    }

    /// Reads a small object whole.
    pub async fn get_bytes(&self, name: &str) -> Result<Bytes, StoreError> {
        let action = format!("reading {name}");
        let result = self
            .store
            .get(&self.path(name))
            .await
            .map_err(self.io(action.clone()))?;
        result.bytes().await.map_err(self.io(action))
    }

    /// Writes a small object whole.
    pub async fn put_bytes(&self, name: &str, bytes: Bytes) -> Result<(), StoreError> {
        self.store
            .put(&self.path(name), PutPayload::from_bytes(bytes))
            .await
            .map_err(self.io(format!("writing {name}")))?;
        Ok(())
    }

    /// Deletes an object.
    pub async fn delete(&self, name: &str) -> Result<(), StoreError> {
        self.store
            .delete(&self.path(name))
            .await
            .map_err(self.io(format!("deleting {name}")))
    }

    /// Starts a multipart upload of `name`.
    pub async fn start_upload(&self, name: &str) -> Result<Upload, StoreError> {
        let upload = self
            .store
            .put_multipart(&self.path(name))
            .await
            .map_err(self.io(format!("starting the upload of {name}")))?;
        Ok(Upload {
            inner: WriteMultipart::new_with_chunk_size(upload, PART_SIZE),
            name: name.to_string(),
            destination: self.clone(),
        })
    }

    /// Streams an object's bytes to `each`, returning its size and hex SHA-256.
    pub async fn stream<F>(&self, name: &str, mut each: F) -> Result<(u64, String), StoreError>
    where
        F: FnMut(Bytes) -> bool,
    {
        let action = format!("reading {name}");
        let result = self
            .store
            .get(&self.path(name))
            .await
            .map_err(self.io(action.clone()))?;
        let mut stream = result.into_stream();
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(self.io(action.clone()))?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            if !each(chunk) {
                break;
            }
        }
        Ok((size, hex::encode(hasher.finalize())))
    }
}

/// A multipart upload in progress; nothing is visible under its name until [`Upload::finish`].
pub struct Upload {
    inner: WriteMultipart,
    name: String,
    destination: Destination,
}

impl Upload {
    /// Queues bytes, waiting while [`UPLOAD_CONCURRENCY`] parts are in flight.
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), StoreError> {
        self.inner.put(bytes);
        let action = format!("uploading {}", self.name);
        self.inner
            .wait_for_capacity(UPLOAD_CONCURRENCY)
            .await
            .map_err(self.destination.io(action))
    }

    /// Completes the upload: the object appears whole.
    pub async fn finish(self) -> Result<(), StoreError> {
        let action = format!("completing the upload of {}", self.name);
        self.inner
            .finish()
            .await
            .map_err(self.destination.io(action))?;
        Ok(())
    }

    /// Abandons the upload; parts already sent are discarded by the store.
    pub async fn abort(self) {
        if let Err(e) = self.inner.abort().await {
            tracing::warn!(object = %self.name, error = %e, "could not abort the upload");
        }
    }
}
