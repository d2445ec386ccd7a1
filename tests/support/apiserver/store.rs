//! The object store: objects as `serde_json::Value` per resource, one global
//! resourceVersion counter, a bounded event history for watch resumption, and the
//! write rules (creation metadata, optimistic concurrency, status subresource,
//! generation, finalizers, validation).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use super::errors::ApiError;
use super::managed::{self, Scope, Writer};
use super::names::{crd_name_problem, name_problem};
use super::resources::{self, ResourceType, crd_status};
use super::selectors::Selector;

/// Validates a custom resource against its CRD; returns error messages.
pub type Validator = Arc<dyn Fn(&CustomResourceDefinition, &Value) -> Vec<String> + Send + Sync>;

/// Storage key of CustomResourceDefinitions.
pub const CRD_KEY: &str = "apiextensions.k8s.io/customresourcedefinitions";
/// Storage key of Namespaces.
pub const NAMESPACE_KEY: &str = "/namespaces";

/// One remembered change, for watch resumption.
#[derive(Clone, Debug)]
pub struct HistoryEvent {
    /// resourceVersion of the change.
    pub rv: u64,
    /// Storage key of the resource.
    pub key: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub etype: &'static str,
    /// The object before the change (MODIFIED only).
    pub old: Option<Value>,
    /// The object after the change (for DELETED: its last state).
    pub new: Value,
}

/// Messages to an open watch stream.
#[derive(Debug)]
pub enum WatchMsg {
    /// One newline-terminated JSON WatchEvent.
    Line(String),
}

/// An open watch.
pub struct Watcher {
    /// Registration id (to unregister when the stream ends).
    pub id: u64,
    /// Storage key watched.
    pub key: String,
    /// Namespace filter.
    pub namespace: Option<String>,
    /// Label/field selector.
    pub selector: Selector,
    /// apiVersion objects are presented in.
    pub api_version: String,
    /// Whether objects are presented as PartialObjectMetadata.
    pub metadata_only: bool,
    /// Where events go.
    pub tx: UnboundedSender<WatchMsg>,
}

/// Options of a delete.
#[derive(Clone, Debug, Default)]
pub struct DeleteOpts {
    /// `Background` (default), `Foreground` or `Orphan`.
    pub propagation: Option<String>,
    /// Precondition on the uid.
    pub uid: Option<String>,
    /// Precondition on the resourceVersion.
    pub resource_version: Option<String>,
    /// Compute but do not persist.
    pub dry_run: bool,
}

/// The whole server state; guarded by one mutex.
pub struct Store {
    /// Served resources by storage key.
    pub resources: BTreeMap<String, ResourceType>,
    objects: HashMap<String, BTreeMap<(String, String), Value>>,
    /// Last assigned resourceVersion.
    pub rv: u64,
    history: VecDeque<HistoryEvent>,
    history_limit: usize,
    /// Events with rv <= compacted are forgotten: watching from there is 410.
    pub compacted: u64,
    /// Open watches.
    pub watchers: Vec<Watcher>,
    next_watch_id: u64,
    seed: u64,
    validator: Option<Validator>,
    deleted_namespaces: HashSet<String>,
    /// Set when the garbage collector has work.
    pub gc_wanted: bool,
}

/// List kinds for a resource: from the CRD schema of the version, or built-in.
pub fn lists_for(rt: &ResourceType, api_version: &str) -> managed::Lists {
    managed::Lists {
        schema: rt
            .crd
            .as_ref()
            .and_then(|crd| super::prune::schema_for(crd, api_version))
            .map(Arc::new),
    }
}

/// The current time as Kubernetes writes `Time` values.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// `metadata.name` of an object ("" if missing).
pub fn name_of(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

/// `metadata.namespace` of an object ("" if missing).
pub fn namespace_of(obj: &Value) -> &str {
    meta_str(obj, "namespace").unwrap_or("")
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn set_meta(obj: &mut Value, field: &str, value: Value) {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"][field] = value;
}

fn remove_meta(obj: &mut Value, field: &str) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove(field);
    }
}

/// Everything that bumps `metadata.generation`: not metadata, and not status
/// when status is a subresource.
fn spec_part(obj: &Value, status_subresource: bool) -> Value {
    let mut v = obj.clone();
    if let Some(map) = v.as_object_mut() {
        map.remove("metadata");
        map.remove("apiVersion");
        map.remove("kind");
        if status_subresource {
            map.remove("status");
        }
    }
    v
}

/// Object without the parts that change on every write (for no-op detection).
fn comparable(obj: &Value) -> (Value, Vec<(String, String, String, managed::FieldSet)>) {
    let mut v = obj.clone();
    remove_meta(&mut v, "resourceVersion");
    remove_meta(&mut v, "managedFields");
    (v, managed::ownership_fingerprint(obj))
}

impl Store {
    /// A store serving the built-in kinds, with the default namespaces.
    pub fn new(history_limit: usize, validator: Option<Validator>) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            | 1;
        let mut store = Self {
            resources: resources::builtins()
                .into_iter()
                .map(|r| (r.key(), r))
                .collect(),
            objects: HashMap::new(),
            rv: 0,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 0,
            watchers: Vec::new(),
            next_watch_id: 1,
            seed,
            validator,
            deleted_namespaces: HashSet::new(),
            gc_wanted: false,
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let writer = Writer {
                manager: "apiserver",
                subresource: "",
                api_version: "v1",
                now: &now(),
                scope: Scope::NoStatus,
                strict: false,
                lists: Default::default(),
            };
            let _ = store.create(NAMESPACE_KEY, None, body, &writer, false, true);
        }
        store
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: good enough for names and uids in tests.
        let mut x = self.seed;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.seed = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn uid(&mut self) -> String {
        let a = self.random();
        let b = self.random();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0xfff,
            b & 0xffff_ffff_ffff
        )
    }

    fn suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..5)
            .map(|_| {
                let i = (self.random() % ALPHABET.len() as u64) as usize;
                ALPHABET[i] as char
            })
            .collect()
    }

    /// The resource type for a storage key.
    pub fn resource(&self, key: &str) -> Result<&ResourceType, ApiError> {
        self.resources
            .get(key)
            .ok_or_else(|| ApiError::no_route(key))
    }

    /// One object.
    pub fn get(&self, key: &str, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(key)?
            .get(&(ns.to_string(), name.to_string()))
    }

    /// Objects of a resource, optionally in one namespace, in (namespace, name) order.
    pub fn list<'a>(
        &'a self,
        key: &str,
        ns: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .get(key)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(move |((o_ns, _), _)| ns.is_none_or(|n| n == o_ns))
            .map(|(_, v)| v)
    }

    /// The oldest resourceVersion a watch may resume from.
    pub fn check_not_expired(&self, rv: u64) -> Result<(), ApiError> {
        if rv < self.compacted {
            Err(ApiError::expired(rv, self.compacted))
        } else {
            Ok(())
        }
    }

    /// Remembered events after `rv` for a storage key.
    pub fn history_since(&self, key: &str, rv: u64) -> impl Iterator<Item = &HistoryEvent> {
        self.history
            .iter()
            .filter(move |e| e.rv > rv && e.key == key)
    }

    /// Forgets all history: every resourceVersion up to now becomes too old.
    pub fn compact_all(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    /// Ends every open watch with a 410 ERROR event and forgets the history,
    /// as after an etcd compaction: clients must list again.
    pub fn expire_watches(&mut self) {
        self.compact_all();
        let status = ApiError::expired(self.rv, self.compacted).to_status();
        let mut line = json!({"type": "ERROR", "object": status}).to_string();
        line.push('\n');
        for w in self.watchers.drain(..) {
            let _ = w.tx.send(WatchMsg::Line(line.clone()));
        }
    }

    /// Ends every open watch normally (as a server-side timeout would).
    pub fn close_watches(&mut self) {
        self.watchers.clear();
    }

    /// Registers an open watch and returns its id.
    pub fn add_watcher(&mut self, mut watcher: Watcher) -> u64 {
        let id = self.next_watch_id;
        self.next_watch_id += 1;
        watcher.id = id;
        self.watchers.push(watcher);
        id
    }

    /// Unregisters a watch.
    pub fn remove_watcher(&mut self, id: u64) {
        self.watchers.retain(|w| w.id != id);
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn emit(&mut self, key: &str, etype: &'static str, old: Option<Value>, new: Value, rv: u64) {
        let event = HistoryEvent {
            rv,
            key: key.to_string(),
            etype,
            old,
            new,
        };
        self.watchers.retain(|w| {
            if w.key != event.key {
                return true;
            }
            match super::watch::render_event(w, &event) {
                Some(line) => w.tx.send(WatchMsg::Line(line)).is_ok(),
                None => !w.tx.is_closed(),
            }
        });
        self.history.push_back(event);
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
    }

    /// Drops unknown fields of a custom resource unless the write is strict,
    /// then applies the schema's defaults.
    fn prune(rt: &ResourceType, obj: &mut Value, strict: bool) {
        if let Some(crd) = &rt.crd {
            if !strict {
                super::prune::prune_custom_resource(crd, obj);
            }
            super::prune::default_custom_resource(crd, obj);
        }
    }

    /// Runs the validator on a custom resource.
    fn validate(&self, rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
        let (Some(crd), Some(validator)) = (&rt.crd, &self.validator) else {
            return Ok(());
        };
        let errors = validator(crd, obj);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(
                &rt.kind,
                &rt.group,
                name_of(obj),
                &errors,
            ))
        }
    }

    /// Creates an object. `record` adds the creator's Update managedFields entry
    /// (apply-created objects arrive with their Apply entry instead).
    pub fn create(
        &mut self,
        key: &str,
        ns: Option<&str>,
        mut obj: Value,
        writer: &Writer<'_>,
        dry_run: bool,
        record: bool,
    ) -> Result<Value, ApiError> {
        let rt = self.resource(key)?.clone();
        let writer = &Writer {
            lists: lists_for(&rt, writer.api_version),
            ..writer.clone()
        };
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj["metadata"] = json!({});
        }
        if rt.namespaced {
            let Some(ns) = ns else {
                return Err(ApiError::bad_request(format!(
                    "{} is namespaced: create it under /namespaces/{{namespace}}/",
                    rt.plural
                )));
            };
            let body_ns = namespace_of(&obj);
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            set_meta(&mut obj, "namespace", json!(ns));
        } else {
            remove_meta(&mut obj, "namespace");
        }
        let mut name = name_of(&obj).to_string();
        if name.is_empty() {
            let prefix = meta_str(&obj, "generateName").unwrap_or("").to_string();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    &rt.kind,
                    &rt.group,
                    "",
                    &["metadata.name: Required value: name or generateName is required".into()],
                ));
            }
            name = format!("{prefix}{}", self.suffix());
            set_meta(&mut obj, "name", json!(name));
        }
        if let Some(problem) = name_problem(&rt, &name) {
            return Err(ApiError::invalid(
                &rt.kind,
                &rt.group,
                &name,
                &[format!("metadata.name: Invalid value: {name:?}: {problem}")],
            ));
        }
        if key == CRD_KEY
            && let Some(problem) = crd_name_problem(&obj, &name)
        {
            return Err(ApiError::invalid(&rt.kind, &rt.group, &name, &[problem]));
        }
        if key == CRD_KEY {
            let problems = super::structural::violations(&obj);
            if !problems.is_empty() {
                return Err(ApiError::invalid(&rt.kind, &rt.group, &name, &problems));
            }
        }
        let ns_key = ns.filter(|_| rt.namespaced).unwrap_or("").to_string();
        if self.get(key, &ns_key, &name).is_some() {
            return Err(ApiError::already_exists(&rt.plural, &rt.group, &name));
        }
        let api_version = writer.api_version.to_string();
        obj["apiVersion"] = json!(api_version);
        obj["kind"] = json!(rt.kind);
        let uid = self.uid();
        set_meta(&mut obj, "uid", json!(uid));
        set_meta(&mut obj, "creationTimestamp", json!(writer.now));
        set_meta(&mut obj, "generation", json!(1));
        for server_owned in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
            "selfLink",
        ] {
            remove_meta(&mut obj, server_owned);
        }
        if rt.status_subresource
            && let Some(map) = obj.as_object_mut()
        {
            map.remove("status");
        }
        if key == NAMESPACE_KEY {
            obj["status"] = json!({"phase": "Active"});
        }
        if key == CRD_KEY {
            let new_rt = resources::from_crd(&obj)
                .map_err(|e| ApiError::invalid(&rt.kind, &rt.group, &name, &[e]))?;
            obj["status"] = crd_status(&obj, writer.now);
            if !dry_run {
                self.resources.insert(new_rt.key(), new_rt);
            }
        }
        Self::prune(&rt, &mut obj, writer.strict);
        if record {
            remove_meta(&mut obj, "managedFields");
            managed::record_update(None, &mut obj, writer);
        }
        self.validate(&rt, &obj)?;
        if dry_run {
            return Ok(obj);
        }
        let rv = self.next_rv();
        set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
        if key == NAMESPACE_KEY {
            self.deleted_namespaces.remove(&name);
        }
        self.objects
            .entry(key.to_string())
            .or_default()
            .insert((ns_key, name), obj.clone());
        self.emit(key, "ADDED", None, obj.clone(), rv);
        // As the real garbage collector, an object created with an owner that is already gone
        // (a controller's apply racing the owner's deletion) is collected too.
        if obj.pointer("/metadata/ownerReferences").is_some() {
            self.gc_wanted = true;
        }
        Ok(obj)
    }

    /// Stores a changed object under the write rules and returns the stored state.
    ///
    /// `new` is the full intended object. For the status subresource only its
    /// status is taken; for the main resource of kinds with a status subresource
    /// its status is ignored. `record` tracks ownership for a non-apply write.
    pub fn commit_update(
        &mut self,
        key: &str,
        old: &Value,
        mut new: Value,
        writer: &Writer<'_>,
        dry_run: bool,
        record: bool,
    ) -> Result<Value, ApiError> {
        let rt = self.resource(key)?.clone();
        let writer = &Writer {
            lists: lists_for(&rt, writer.api_version),
            ..writer.clone()
        };
        if !new.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        let name = name_of(old).to_string();
        let ns = namespace_of(old).to_string();
        let body_name = name_of(&new);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if old.pointer("/metadata/deletionTimestamp").is_some() && writer.subresource != "status" {
            let before = finalizers(old);
            let added: Vec<String> = finalizers(&new)
                .into_iter()
                .filter(|f| !before.contains(f))
                .collect();
            if !added.is_empty() {
                return Err(ApiError::invalid(
                    &rt.kind,
                    &rt.group,
                    &name,
                    &[format!(
                        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                    )],
                ));
            }
        }
        let applied_fields = new.pointer("/metadata/managedFields").cloned();
        if writer.subresource == "status" {
            // Only status changes through the status subresource.
            let status = new.get("status").cloned();
            new = old.clone();
            match status {
                Some(s) => new["status"] = s,
                None => {
                    if let Some(map) = new.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
        } else {
            if !new.get("metadata").is_some_and(Value::is_object) {
                new["metadata"] = json!({});
            }
            for immutable in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old.pointer(&format!("/metadata/{immutable}")) {
                    Some(v) => set_meta(&mut new, immutable, v.clone()),
                    None => remove_meta(&mut new, immutable),
                }
            }
            if rt.status_subresource {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(map) = new.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
            }
        }
        new["apiVersion"] = json!(writer.api_version);
        new["kind"] = json!(rt.kind);
        remove_meta(&mut new, "resourceVersion");
        Self::prune(&rt, &mut new, writer.strict);
        if record {
            managed::record_update(Some(old), &mut new, writer);
        } else {
            match applied_fields {
                Some(mf) => set_meta(&mut new, "managedFields", mf),
                None => remove_meta(&mut new, "managedFields"),
            }
        }
        if spec_part(old, rt.status_subresource) != spec_part(&new, rt.status_subresource) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            set_meta(&mut new, "generation", json!(generation + 1));
        }
        if key == CRD_KEY {
            let problems = super::structural::violations(&new);
            if !problems.is_empty() {
                return Err(ApiError::invalid(&rt.kind, &rt.group, &name, &problems));
            }
        }
        if key == CRD_KEY {
            let new_rt = resources::from_crd(&new)
                .map_err(|e| ApiError::invalid(&rt.kind, &rt.group, &name, &[e]))?;
            let since = old
                .pointer("/status/conditions/0/lastTransitionTime")
                .and_then(Value::as_str)
                .unwrap_or(writer.now)
                .to_string();
            new["status"] = crd_status(&new, &since);
            if !dry_run {
                self.resources.insert(new_rt.key(), new_rt);
            }
        }
        self.validate(&rt, &new)?;
        if comparable(&new) == comparable(old) {
            // A no-op write: nothing is stored, no event, same resourceVersion.
            return Ok(old.clone());
        }
        if dry_run {
            return Ok(new);
        }
        let rv = self.next_rv();
        set_meta(&mut new, "resourceVersion", json!(rv.to_string()));
        let deleting = new.pointer("/metadata/deletionTimestamp").is_some();
        if deleting && finalizers(&new).is_empty() {
            self.emit(key, "MODIFIED", Some(old.clone()), new.clone(), rv);
            return Ok(self.remove(key, &ns, &name, new));
        }
        self.objects
            .entry(key.to_string())
            .or_default()
            .insert((ns, name), new.clone());
        self.emit(key, "MODIFIED", Some(old.clone()), new.clone(), rv);
        if deleting {
            self.gc_wanted = true;
        }
        Ok(new)
    }

    /// Removes an object for good (DELETED event, dependents left to the GC).
    fn remove(&mut self, key: &str, ns: &str, name: &str, mut last: Value) -> Value {
        if let Some(map) = self.objects.get_mut(key) {
            map.remove(&(ns.to_string(), name.to_string()));
        }
        let rv = self.next_rv();
        set_meta(&mut last, "resourceVersion", json!(rv.to_string()));
        self.emit(key, "DELETED", None, last.clone(), rv);
        self.gc_wanted = true;
        if key == NAMESPACE_KEY {
            self.deleted_namespaces.insert(name.to_string());
        }
        if key == CRD_KEY
            && let Ok(rt) = resources::from_crd(&last)
        {
            let cr_key = rt.key();
            let instances: Vec<((String, String), Value)> = self
                .objects
                .remove(&cr_key)
                .map(|m| m.into_iter().collect())
                .unwrap_or_default();
            for (_, obj) in instances {
                let rv = self.next_rv();
                let mut obj = obj;
                set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
                self.emit(&cr_key, "DELETED", None, obj, rv);
            }
            self.resources.remove(&cr_key);
        }
        last
    }

    /// Deletes an object: at once without finalizers, otherwise by setting
    /// deletionTimestamp. Returns the object and whether it is gone.
    pub fn delete(
        &mut self,
        key: &str,
        ns: &str,
        name: &str,
        opts: &DeleteOpts,
    ) -> Result<(Value, bool), ApiError> {
        let rt = self.resource(key)?.clone();
        let Some(old) = self.get(key, ns, name).cloned() else {
            return Err(ApiError::not_found(&rt.plural, &rt.group, name));
        };
        if let Some(uid) = &opts.uid
            && meta_str(&old, "uid") != Some(uid.as_str())
        {
            return Err(ApiError::conflict(
                &rt.plural,
                &rt.group,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid").unwrap_or("")
                ),
            ));
        }
        if let Some(rv) = &opts.resource_version
            && meta_str(&old, "resourceVersion") != Some(rv.as_str())
        {
            return Err(ApiError::conflict(
                &rt.plural,
                &rt.group,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&old, "resourceVersion").unwrap_or("")
                ),
            ));
        }
        let mut new = old.clone();
        let mut fins = finalizers(&old);
        match opts.propagation.as_deref() {
            Some("Foreground") if !fins.iter().any(|f| f == "foregroundDeletion") => {
                fins.push("foregroundDeletion".into());
            }
            Some("Orphan") if !fins.iter().any(|f| f == "orphan") => fins.push("orphan".into()),
            None | Some("Background" | "Foreground" | "Orphan") => {}
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "unsupported propagationPolicy {other:?}"
                )));
            }
        }
        if fins.is_empty() {
            if opts.dry_run {
                return Ok((old, true));
            }
            return Ok((self.remove(key, ns, name, old), true));
        }
        set_meta(&mut new, "finalizers", json!(fins));
        if old.pointer("/metadata/deletionTimestamp").is_none() {
            set_meta(&mut new, "deletionTimestamp", json!(now()));
            set_meta(&mut new, "deletionGracePeriodSeconds", json!(0));
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            set_meta(&mut new, "generation", json!(generation + 1));
        }
        if comparable(&new) == comparable(&old) {
            return Ok((old, false));
        }
        if opts.dry_run {
            return Ok((new, false));
        }
        let rv = self.next_rv();
        set_meta(&mut new, "resourceVersion", json!(rv.to_string()));
        self.objects
            .entry(key.to_string())
            .or_default()
            .insert((ns.to_string(), name.to_string()), new.clone());
        self.emit(key, "MODIFIED", Some(old), new.clone(), rv);
        self.gc_wanted = true;
        Ok((new, false))
    }

    /// What the garbage collector looks at: the uids of all objects, and (storage
    /// key, object) for objects that have owners, are being deleted, or live in
    /// a deleted namespace.
    pub fn gc_view(&self) -> (HashSet<String>, Vec<(String, Value)>) {
        let mut uids = HashSet::new();
        let mut candidates = Vec::new();
        for (key, map) in &self.objects {
            for ((ns, _), obj) in map {
                if let Some(uid) = meta_str(obj, "uid") {
                    uids.insert(uid.to_string());
                }
                let interesting = obj.pointer("/metadata/ownerReferences").is_some()
                    || obj.pointer("/metadata/deletionTimestamp").is_some()
                    || (!ns.is_empty() && self.deleted_namespaces.contains(ns));
                if interesting {
                    candidates.push((key.clone(), obj.clone()));
                }
            }
        }
        (uids, candidates)
    }

    /// Namespaces deleted and not re-created: their contents are collected.
    pub fn is_deleted_namespace(&self, ns: &str) -> bool {
        self.deleted_namespaces.contains(ns)
    }
}
