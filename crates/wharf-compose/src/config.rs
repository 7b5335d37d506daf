//! `config`: the project as canonical YAML, the shape `docker compose config` prints: `name`,
//! then `services` (sorted, keys sorted, every short syntax in its long form, relative paths
//! made absolute, variables interpolated), `networks` (with the implied `default` and the
//! engine names), `volumes`.

use crate::model::Project;

pub fn to_yaml(p: &Project) -> String {
    serde_yaml_ng::to_string(p).unwrap_or_default()
}

/// `config --services`.
pub fn services(p: &Project) -> Vec<String> {
    p.services.keys().cloned().collect()
}

/// `config --volumes`.
pub fn volumes(p: &Project) -> Vec<String> {
    p.volumes.keys().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{load, Options};

    #[test]
    fn canonical_form() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::write(
            d.join("compose.yaml"),
            "name: demo\nservices:\n  web:\n    image: busybox\n    command: sleep ${T:-5}\n    ports: ['8080:80']\n    depends_on: [db]\n    environment: [A=1]\n    volumes: ['data:/data', './src:/src:ro']\n  db:\n    image: busybox\nvolumes:\n  data:\n",
        )
        .unwrap();
        let p = load(&Options {
            cwd: d.to_path_buf(),
            ..Default::default()
        })
        .unwrap();
        let src = d.join("src").display().to_string();
        assert_eq!(
            to_yaml(&p),
            format!(
                "name: demo
services:
  db:
    image: busybox
    networks:
      default: null
  web:
    command:
    - sleep
    - '5'
    depends_on:
      db:
        condition: service_started
        required: true
    environment:
      A: '1'
    image: busybox
    networks:
      default: null
    ports:
    - mode: ingress
      target: 80
      published: '8080'
      protocol: tcp
    volumes:
    - type: volume
      source: data
      target: /data
    - type: bind
      source: {src}
      target: /src
      read_only: true
networks:
  default:
    name: demo_default
volumes:
  data:
    name: demo_data
"
            )
        );
        assert_eq!(services(&p), ["db", "web"]);
        assert_eq!(volumes(&p), ["data"]);
    }
}
