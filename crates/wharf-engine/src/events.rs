//! The events bus behind `GET /events`.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use tokio::sync::broadcast;

/// One event, as `/events` streams it.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: &'static str,
    pub action: String,
    pub id: String,
    pub attributes: BTreeMap<String, String>,
    pub time_nano: i64,
}

impl Event {
    /// Docker's JSON shape (with the legacy status/id/from fields for containers).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "Type": self.kind,
            "Action": self.action,
            "Actor": {"ID": self.id, "Attributes": self.attributes},
            "scope": "local",
            "time": self.time_nano / 1_000_000_000,
            "timeNano": self.time_nano,
        });
        if self.kind == "container" {
            v["status"] = json!(self.action);
            v["id"] = json!(self.id);
            if let Some(img) = self.attributes.get("image") {
                v["from"] = json!(img);
            }
        }
        v
    }

    /// Whether the event passes `/events` filters (`type`, `event`/`action`, `container`,
    /// `image`, `label`).
    pub fn matches(&self, filters: &BTreeMap<String, Vec<String>>) -> bool {
        filters.iter().all(|(k, vals)| {
            vals.is_empty()
                || vals.iter().any(|v| match k.as_str() {
                    "type" => v == self.kind,
                    "event" | "action" => *v == self.action,
                    "container" => {
                        self.kind == "container"
                            && (self.id.starts_with(v.as_str())
                                || self.attributes.get("name") == Some(v))
                    }
                    "image" => {
                        self.attributes.get("image") == Some(v)
                            || (self.kind == "image" && self.id == *v)
                    }
                    "label" => {
                        let (lk, lv) = v.split_once('=').unwrap_or((v, ""));
                        self.attributes
                            .get(lk)
                            .is_some_and(|x| lv.is_empty() || x == lv)
                    }
                    _ => true,
                })
        })
    }
}

/// A broadcast bus with a short history for `since`.
pub struct Events {
    tx: broadcast::Sender<Event>,
    history: std::sync::Mutex<std::collections::VecDeque<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(1024).0,
            history: Default::default(),
        }
    }
}

impl Events {
    pub fn publish(
        &self,
        kind: &'static str,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let now = chrono::Utc::now();
        let ev = Event {
            kind,
            action: action.to_string(),
            id: id.to_string(),
            attributes,
            time_nano: now.timestamp_nanos_opt().unwrap_or(0),
        };
        let mut h = self.history.lock().expect("events lock");
        h.push_back(ev.clone());
        if h.len() > 1000 {
            h.pop_front();
        }
        let _ = self.tx.send(ev);
    }

    /// Past events (for `since`) and a receiver for new ones, taken atomically.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let h = self.history.lock().expect("events lock");
        (h.iter().cloned().collect(), self.tx.subscribe())
    }
}
