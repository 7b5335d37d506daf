//! The build's progress stream in the classic builder's JSON messages, kept in Dockerfile
//! order while stages run at once: a stage's messages go out live when every stage before it
//! has finished, and are held until then otherwise.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// Where messages go (the HTTP response, a test's vector).
pub type Sink = Arc<dyn Fn(Value) + Send + Sync>;

struct State {
    held: Vec<Vec<Value>>,
    done: Vec<bool>,
    /// The stage whose messages go out live.
    live: usize,
}

/// One build's stream, with a lane per built stage.
#[derive(Clone)]
pub struct Ordered {
    sink: Sink,
    state: Arc<Mutex<State>>,
    quiet: bool,
}

impl Ordered {
    pub fn new(sink: Sink, lanes: usize, quiet: bool) -> Ordered {
        Ordered {
            sink,
            state: Arc::new(Mutex::new(State {
                held: vec![Vec::new(); lanes],
                done: vec![false; lanes],
                live: 0,
            })),
            quiet,
        }
    }

    /// A message of `lane`'s stage.
    pub fn send(&self, lane: usize, v: Value) {
        if self.quiet {
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if lane == st.live {
            drop(st);
            (self.sink)(v);
        } else if let Some(h) = st.held.get_mut(lane) {
            h.push(v);
        }
    }

    pub fn stream(&self, lane: usize, text: impl Into<String>) {
        self.send(lane, json!({ "stream": text.into() }));
    }

    /// `lane`'s stage is over: the next ones' held messages go out.
    pub fn finish(&self, lane: usize) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = st.done.get_mut(lane) {
            *d = true;
        }
        while st.live < st.done.len() && st.done[st.live] {
            st.live += 1;
            if st.live < st.held.len() {
                let live = st.live;
                let msgs = std::mem::take(&mut st.held[live]);
                for m in msgs {
                    (self.sink)(m);
                }
            }
        }
    }

    /// A message outside the stages (the end of the build), sent after everything held.
    pub fn global(&self, v: Value) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let lanes = st.held.len();
        for lane in st.live..lanes {
            let msgs = std::mem::take(&mut st.held[lane]);
            for m in msgs {
                (self.sink)(m);
            }
        }
        st.live = lanes;
        drop(st);
        (self.sink)(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_stages_wait_for_earlier_ones() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        let o = Ordered::new(Arc::new(move |v| g.lock().unwrap().push(v)), 3, false);
        o.stream(2, "c1");
        o.stream(0, "a1");
        o.stream(1, "b1");
        o.finish(2);
        o.stream(0, "a2");
        o.finish(0);
        o.stream(1, "b2");
        o.finish(1);
        o.global(json!({"stream": "end"}));
        let texts: Vec<String> = got
            .lock()
            .unwrap()
            .iter()
            .map(|v| v["stream"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(texts, ["a1", "a2", "b1", "b2", "c1", "end"]);
    }
}
