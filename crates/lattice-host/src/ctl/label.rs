//! `label.put.{host}` and `label.del.{host}`.
//!
//! Labels travel in every heartbeat, so their number and size are capped: the heartbeat must
//! stay bounded whatever clients do.

use lattice_proto::ctl::{validate_label_key, HostLabel, HostLabelKey};
use lattice_proto::event::{LabelsChanged, LABELS_CHANGED};
use lattice_proto::{decode_request, CtlResponse};

use super::reply::Handled;
use crate::events::EventPublisher;
use crate::identity::Identity;

pub(crate) const MAX_LABELS: usize = 64;
pub(crate) const MAX_LABEL_VALUE_BYTES: usize = 512;

pub(super) async fn put(me: &Identity, events: &EventPublisher, body: &[u8]) -> Handled {
    let label: HostLabel = match decode_request(body, "label {key, value}") {
        Ok(l) => l,
        Err(e) => return Handled::error(e.to_string()),
    };
    if let Err(e) = validate_label_key(&label.key) {
        return Handled::error(e.to_string());
    }
    if label.value.len() > MAX_LABEL_VALUE_BYTES {
        return Handled::error(format!(
            "label value is {} bytes, over the {MAX_LABEL_VALUE_BYTES}-byte limit",
            label.value.len()
        ));
    }
    let labels = {
        let Ok(mut labels) = me.labels.write() else {
            return Handled::error("host label table is unavailable");
        };
        if !labels.contains_key(&label.key) && labels.len() >= MAX_LABELS {
            return Handled::error(format!("a host holds at most {MAX_LABELS} labels"));
        }
        labels.insert(label.key, label.value);
        labels.clone()
    };
    changed(me, events, labels).await;
    Handled::reply(CtlResponse::success())
}

pub(super) async fn del(me: &Identity, events: &EventPublisher, body: &[u8]) -> Handled {
    let HostLabelKey { key } = match decode_request(body, "label key {key}") {
        Ok(k) => k,
        Err(e) => return Handled::error(e.to_string()),
    };
    if let Err(e) = validate_label_key(&key) {
        return Handled::error(e.to_string());
    }
    let (removed, labels) = {
        let Ok(mut labels) = me.labels.write() else {
            return Handled::error("host label table is unavailable");
        };
        (labels.remove(&key).is_some(), labels.clone())
    };
    if !removed {
        // Deleting is idempotent: the label is absent either way.
        return Handled::reply(CtlResponse::success_with(format!(
            "label {key:?} was not set"
        )));
    }
    changed(me, events, labels).await;
    Handled::reply(CtlResponse::success())
}

async fn changed(
    me: &Identity,
    events: &EventPublisher,
    labels: std::collections::BTreeMap<String, String>,
) {
    events
        .publish(
            LABELS_CHANGED,
            LabelsChanged {
                host_id: me.id.clone(),
                labels,
            },
        )
        .await;
}
