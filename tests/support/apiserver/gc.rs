//! Garbage collection, run by a background task after deletions:
//! - an object whose every ownerReference names an owner (by uid) that no longer
//!   exists is deleted (background propagation);
//! - an owner being deleted with `foregroundDeletion` has its dependents deleted
//!   first, then the finalizer removed;
//! - an owner being deleted with `orphan` has the ownerReferences to it removed
//!   from its dependents, then the finalizer removed;
//! - objects in a deleted namespace are deleted.

use serde_json::Value;

use super::managed::{Scope, Writer};
use super::store::{self, DeleteOpts, Store};

const MANAGER: &str = "garbage-collector";

fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn uid(obj: &Value) -> &str {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
}

fn has_finalizer(obj: &Value, name: &str) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x.as_str() == Some(name)))
}

fn writer<'a>(api_version: &'a str, now: &'a str) -> Writer<'a> {
    Writer {
        manager: MANAGER,
        subresource: "",
        api_version,
        now,
        scope: Scope::NoStatus,
        strict: false,
        lists: Default::default(),
    }
}

fn api_version(obj: &Value) -> String {
    obj.get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("v1")
        .to_string()
}

/// Removes a finalizer from a stored object (which may then disappear).
fn drop_finalizer(store: &mut Store, key: &str, obj: &Value, finalizer: &str) {
    let mut new = obj.clone();
    if let Some(list) = new
        .pointer_mut("/metadata/finalizers")
        .and_then(Value::as_array_mut)
    {
        list.retain(|f| f.as_str() != Some(finalizer));
    }
    let av = api_version(obj);
    let now = store::now();
    let _ = store.commit_update(key, obj, new, &writer(&av, &now), false, true);
}

/// One collection pass; returns whether anything changed (run again then).
pub fn pass(store: &mut Store) -> bool {
    let (live, objects) = store.gc_view();
    let mut changed = false;
    let background = DeleteOpts::default();

    for (key, obj) in &objects {
        let ns = store::namespace_of(obj).to_string();
        let name = store::name_of(obj).to_string();
        let owners = owner_uids(obj);
        let in_deleted_ns = !ns.is_empty() && store.is_deleted_namespace(&ns);
        let orphaned = !owners.is_empty() && owners.iter().all(|o| !live.contains(o));
        if (in_deleted_ns || orphaned) && !is_deleting(obj) {
            changed |= store.delete(key, &ns, &name, &background).is_ok();
            continue;
        }
        if !is_deleting(obj) {
            continue;
        }
        let my_uid = uid(obj);
        let dependents: Vec<&(String, Value)> = objects
            .iter()
            .filter(|(_, d)| owner_uids(d).iter().any(|o| o == my_uid))
            .collect();
        if has_finalizer(obj, "orphan") {
            for (dkey, dep) in &dependents {
                let mut new = dep.clone();
                if let Some(refs) = new
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(my_uid));
                }
                let av = api_version(dep);
                let now = store::now();
                let _ = store.commit_update(dkey, dep, new, &writer(&av, &now), false, true);
            }
            drop_finalizer(store, key, obj, "orphan");
            changed = true;
        } else if has_finalizer(obj, "foregroundDeletion") {
            if dependents.is_empty() {
                drop_finalizer(store, key, obj, "foregroundDeletion");
                changed = true;
            } else {
                let foreground = DeleteOpts {
                    propagation: Some("Foreground".into()),
                    ..DeleteOpts::default()
                };
                for (dkey, dep) in dependents {
                    if !is_deleting(dep) {
                        let dns = store::namespace_of(dep).to_string();
                        let dname = store::name_of(dep).to_string();
                        changed |= store.delete(dkey, &dns, &dname, &foreground).is_ok();
                    }
                }
            }
        }
    }
    changed
}
