//! The order services start in: dependencies first (`depends_on`), by name among equals.

use crate::error::{ComposeError, Result};
use crate::model::Project;
use std::collections::{BTreeMap, BTreeSet};

/// The services in `wanted` (all when empty) and their dependencies, dependencies first.
pub fn start_order(p: &Project, wanted: &[String], with_deps: bool) -> Result<Vec<String>> {
    let mut selected: BTreeSet<String> = if wanted.is_empty() {
        p.services.keys().cloned().collect()
    } else {
        wanted.iter().cloned().collect()
    };
    if with_deps {
        let mut stack: Vec<String> = selected.iter().cloned().collect();
        while let Some(s) = stack.pop() {
            if let Some(svc) = p.services.get(&s) {
                for d in svc.depends_on.keys() {
                    if p.services.contains_key(d) && selected.insert(d.clone()) {
                        stack.push(d.clone());
                    }
                }
            }
        }
    }
    // Kahn's algorithm over the selected services; BTree ordering keeps it deterministic.
    let mut indeg: BTreeMap<&str, usize> = selected.iter().map(|s| (s.as_str(), 0)).collect();
    for s in &selected {
        if let Some(svc) = p.services.get(s) {
            let n = svc
                .depends_on
                .keys()
                .filter(|d| selected.contains(*d))
                .count();
            indeg.insert(s.as_str(), n);
        }
    }
    let mut out = Vec::new();
    let mut ready: BTreeSet<&str> = indeg
        .iter()
        .filter(|(_, &n)| n == 0)
        .map(|(s, _)| *s)
        .collect();
    while let Some(s) = ready.pop_first() {
        out.push(s.to_string());
        for (other, n) in indeg.iter_mut() {
            if *n > 0
                && p.services
                    .get(*other)
                    .is_some_and(|o| o.depends_on.contains_key(s))
            {
                *n -= 1;
                if *n == 0 {
                    ready.insert(other);
                }
            }
        }
    }
    if out.len() < selected.len() {
        let left: Vec<&str> = selected
            .iter()
            .map(String::as_str)
            .filter(|s| !out.iter().any(|o| o == s))
            .collect();
        return Err(ComposeError::DependsCycle(left.join(", ")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Condition, DependsOn, Service};

    fn project(edges: &[(&str, &[&str])]) -> Project {
        let mut p = Project::default();
        for (s, deps) in edges {
            let mut svc = Service::default();
            for d in *deps {
                svc.depends_on.insert(
                    d.to_string(),
                    DependsOn {
                        condition: Condition::ServiceStarted,
                        required: true,
                        restart: false,
                    },
                );
            }
            p.services.insert(s.to_string(), svc);
        }
        p
    }

    #[test]
    fn dependencies_first() {
        let p = project(&[
            ("web", &["api"]),
            ("api", &["db", "cache"]),
            ("db", &[]),
            ("cache", &[]),
            ("zz", &[]),
        ]);
        assert_eq!(
            start_order(&p, &[], true).unwrap(),
            ["cache", "db", "api", "web", "zz"]
        );
        assert_eq!(
            start_order(&p, &["api".into()], true).unwrap(),
            ["cache", "db", "api"]
        );
        assert_eq!(start_order(&p, &["api".into()], false).unwrap(), ["api"]);
    }

    #[test]
    fn cycles_are_errors() {
        let p = project(&[("a", &["b"]), ("b", &["a"]), ("c", &[])]);
        assert_eq!(
            start_order(&p, &[], true).unwrap_err().to_string(),
            "services: dependency cycle between a, b"
        );
    }
}
