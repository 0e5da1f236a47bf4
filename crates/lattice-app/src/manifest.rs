//! Application manifests in wadm's OAM format, and their validation.
//!
//! A manifest is parsed leniently (unknown fields are kept out of the way, as wadm does), then
//! [`Manifest::validate`] checks everything a deployment relies on and reports *every*
//! problem with the path of the offending field, e.g.
//! `spec.components[1].traits[0].properties.spread[0].weight: must be at least 1`.
//! Nothing is deployed from a manifest that has any.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// Capabilities built into every host, by the image wasmCloud names them with, and the link
/// source (or target) id each one is. `keyvalue-nats` is Lattice's name, after wasmCloud's
/// provider of that name: a component's link to it grants buckets (see
/// `lattice_proto::grant`).
pub const BUILTINS: [(&str, &str); 3] = [
    ("wasmcloud+builtin://http-server", "http"),
    (
        "wasmcloud+builtin://messaging-nats",
        lattice_proto::grant::MESSAGING,
    ),
    (
        "wasmcloud+builtin://keyvalue-nats",
        lattice_proto::grant::KEYVALUE,
    ),
];

/// The only `apiVersion` and `kind` accepted (wadm's).
pub const API_VERSION: &str = "core.oam.dev/v1beta1";
pub const KIND: &str = "Application";
/// Annotation holding a manifest's version.
pub const VERSION_ANNOTATION: &str = "version";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: Spec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub components: Vec<Component>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub properties: ComponentProperties,
    #[serde(default)]
    pub traits: Vec<Trait>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentProperties {
    #[serde(default)]
    pub image: String,
    /// The component id; `{app}-{component name}` when absent (as wadm does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub config: Vec<ConfigProperty>,
}

/// A named config: created with `properties` when they are given, else expected to exist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigProperty {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<BTreeMap<String, String>>,
}

/// A trait as written: its `properties` are checked against its `type` in validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trait {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub properties: serde_json::Value,
}

/// `spreadscaler` / `daemonscaler` properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalerProperties {
    pub instances: u32,
    #[serde(default)]
    pub spread: Vec<Spread>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub name: String,
    #[serde(default)]
    pub requirements: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

/// `link` properties (wadm's shape; `target` may be a bare component name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkProperties {
    pub target: LinkTarget,
    pub namespace: String,
    pub package: String,
    pub interfaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<LinkEnd>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LinkTarget {
    Name(String),
    Full {
        name: String,
        #[serde(default)]
        config: Vec<ConfigProperty>,
    },
}

impl LinkTarget {
    pub fn name(&self) -> &str {
        match self {
            LinkTarget::Name(n) | LinkTarget::Full { name: n, .. } => n,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkEnd {
    #[serde(default)]
    pub config: Vec<ConfigProperty>,
}

/// How a component's instances are placed.
#[derive(Debug, Clone, PartialEq)]
pub enum Scaler {
    /// `instances` in all, split over the spreads by weight.
    Spread(ScalerProperties),
    /// `instances` on every matching host.
    Daemon(ScalerProperties),
}

/// One problem in a manifest, at `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("not a manifest: {0}")]
    Parse(String),
    #[error("invalid manifest: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
}

impl Manifest {
    /// Parses YAML (JSON is YAML too) and validates.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let m: Manifest =
            serde_yaml::from_str(text).map_err(|e| ManifestError::Parse(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    /// The version annotation, if any.
    pub fn version(&self) -> Option<&str> {
        self.metadata
            .annotations
            .get(VERSION_ANNOTATION)
            .map(String::as_str)
    }

    /// The id component `c` runs under.
    pub fn component_id(&self, c: &Component) -> String {
        if let Some(source) = Self::builtin_source(c) {
            return source.to_string();
        }
        c.properties
            .id
            .clone()
            .unwrap_or_else(|| format!("{}-{}", self.metadata.name, c.name))
    }

    /// Every problem, with its path; `Ok` when there is none.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let mut p = Problems::default();
        if self.api_version != API_VERSION {
            p.add("apiVersion", format!("must be {API_VERSION:?}"));
        }
        if self.kind != KIND {
            p.add("kind", format!("must be {KIND:?}"));
        }
        if let Err(e) = lattice_proto::subject::validate_token("name", &self.metadata.name) {
            p.add("metadata.name", e.reason);
        }
        if self.spec.components.is_empty() {
            p.add("spec.components", "must list at least one component");
        }
        let names: BTreeSet<&str> = self
            .spec
            .components
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let mut seen = BTreeSet::new();
        for (i, c) in self.spec.components.iter().enumerate() {
            let at = format!("spec.components[{i}]");
            if !seen.insert(c.name.as_str()) {
                p.add(format!("{at}.name"), format!("{:?} appears twice", c.name));
            }
            match c.kind.as_str() {
                // A capability is built in (a `wasmcloud+builtin://` image) or a provider.
                "component" | "capability" => {}
                other => p.add(
                    format!("{at}.type"),
                    format!("{other:?} is not supported (component or capability)"),
                ),
            }
            if c.properties.image.trim().is_empty() {
                p.add(format!("{at}.properties.image"), "must be given");
            }
            if let Err(e) = lattice_proto::subject::validate_token("id", &self.component_id(c)) {
                p.add(
                    format!("{at}.properties.id"),
                    format!("{:?} {}", e.name, e.reason),
                );
            }
            check_configs(
                &mut p,
                &format!("{at}.properties.config"),
                &c.properties.config,
            );
            let mut scalers = 0;
            for (j, t) in c.traits.iter().enumerate() {
                let at = format!("{at}.traits[{j}]");
                match t.kind.as_str() {
                    "spreadscaler" | "daemonscaler" => {
                        scalers += 1;
                        if scalers == 2 {
                            p.add(format!("{at}.type"), "a component takes one scaler");
                        }
                        check_scaler(&mut p, &format!("{at}.properties"), &t.properties);
                    }
                    "link" => {
                        check_link(&mut p, &format!("{at}.properties"), &t.properties, &names)
                    }
                    other => p.add(
                        format!("{at}.type"),
                        format!("unknown trait {other:?} (spreadscaler, daemonscaler, link)"),
                    ),
                }
            }
        }
        p.result()
    }

    /// The scaler of component `c` (validated manifests have at most one).
    pub fn scaler(c: &Component) -> Option<Scaler> {
        c.traits.iter().find_map(|t| {
            let props = serde_json::from_value(t.properties.clone()).ok()?;
            match t.kind.as_str() {
                "spreadscaler" => Some(Scaler::Spread(props)),
                "daemonscaler" => Some(Scaler::Daemon(props)),
                _ => None,
            }
        })
    }

    /// The source id of a built-in capability (`type: capability` with a
    /// `wasmcloud+builtin://` image): every host has it, so it is never placed, and its link
    /// traits are links from that source (e.g. `http` for HTTP ingress).
    pub fn builtin_source(c: &Component) -> Option<&'static str> {
        if c.kind != "capability" {
            return None;
        }
        BUILTINS
            .iter()
            .find(|(image, _)| *image == c.properties.image)
            .map(|(_, source)| *source)
    }

    /// Whether `c` is a capability provider: a capability that is not built in, run by the
    /// hosts its scaler picks as an external process (`provider.start`).
    pub fn is_provider(c: &Component) -> bool {
        c.kind == "capability" && Self::builtin_source(c).is_none()
    }

    /// The link traits of component `c`.
    pub fn links(c: &Component) -> Vec<LinkProperties> {
        c.traits
            .iter()
            .filter(|t| t.kind == "link")
            .filter_map(|t| serde_json::from_value(t.properties.clone()).ok())
            .collect()
    }
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn result(self) -> Result<(), ManifestError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ManifestError::Invalid(self.0))
        }
    }
}

fn check_configs(p: &mut Problems, at: &str, configs: &[ConfigProperty]) {
    for (k, c) in configs.iter().enumerate() {
        if let Err(e) = lattice_proto::subject::validate_config_name(&c.name) {
            p.add(format!("{at}[{k}].name"), e.reason);
        }
    }
}

/// Typed properties of a trait, or a problem naming the first field serde refused.
fn typed<T: serde::de::DeserializeOwned>(
    p: &mut Problems,
    at: &str,
    value: &serde_json::Value,
) -> Option<T> {
    match serde_json::from_value(value.clone()) {
        Ok(v) => Some(v),
        Err(e) => {
            p.add(at, e.to_string());
            None
        }
    }
}

fn check_scaler(p: &mut Problems, at: &str, value: &serde_json::Value) {
    let Some(s) = typed::<ScalerProperties>(p, at, value) else {
        return;
    };
    let mut names = BTreeSet::new();
    for (k, spread) in s.spread.iter().enumerate() {
        let at = format!("{at}.spread[{k}]");
        if !names.insert(spread.name.as_str()) {
            p.add(
                format!("{at}.name"),
                format!("{:?} appears twice", spread.name),
            );
        }
        if spread.weight == Some(0) {
            p.add(format!("{at}.weight"), "must be at least 1");
        }
    }
}

fn check_link(p: &mut Problems, at: &str, value: &serde_json::Value, names: &BTreeSet<&str>) {
    let Some(l) = typed::<LinkProperties>(p, at, value) else {
        return;
    };
    if !names.contains(l.target.name()) {
        p.add(
            format!("{at}.target"),
            format!("no component named {:?} in this manifest", l.target.name()),
        );
    }
    if l.interfaces.is_empty() {
        p.add(
            format!("{at}.interfaces"),
            "must list at least one interface",
        );
    }
    for (what, v) in [("namespace", &l.namespace), ("package", &l.package)] {
        if v.is_empty() || v.contains(|c: char| c == ':' || c == '/' || c.is_whitespace()) {
            p.add(format!("{at}.{what}"), "must be a WIT name");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: shop
  annotations:
    version: v1
spec:
  components:
    - name: api
      type: component
      properties:
        image: file:///relay.wasm
      traits:
        - type: spreadscaler
          properties:
            instances: 6
            spread:
              - name: a
                requirements: { zone: a }
                weight: 2
              - name: b
                requirements: { zone: b }
                weight: 1
        - type: link
          properties:
            target: { name: calc }
            namespace: lattice
            package: examples
            interfaces: [calc]
    - name: calc
      type: component
      properties:
        image: file:///calc.wasm
        id: calc
      traits:
        - type: daemonscaler
          properties: { instances: 2 }
"#;

    #[test]
    fn a_wadm_manifest_parses_with_its_scalers_and_links() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.version(), Some("v1"));
        let api = &m.spec.components[0];
        assert_eq!(m.component_id(api), "shop-api");
        assert_eq!(m.component_id(&m.spec.components[1]), "calc");
        match Manifest::scaler(api) {
            Some(Scaler::Spread(s)) => {
                assert_eq!(s.instances, 6);
                assert_eq!(s.spread[0].weight, Some(2));
            }
            other => panic!("{other:?}"),
        }
        let links = Manifest::links(api);
        assert_eq!(links[0].target.name(), "calc");
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let bad = GOOD
            .replace("weight: 2", "weight: 0")
            .replace("target: { name: calc }", "target: nowhere")
            .replace("type: daemonscaler", "type: autoscaler")
            .replace("image: file:///calc.wasm", "image: ''");
        let Err(ManifestError::Invalid(problems)) = Manifest::parse(&bad) else {
            panic!("accepted");
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.components[0].traits[0].properties.spread[0].weight",
                "spec.components[0].traits[1].properties.target",
                "spec.components[1].properties.image",
                "spec.components[1].traits[0].type",
            ]
        );
        let text = ManifestError::Invalid(problems).to_string();
        assert!(text.contains("weight: must be at least 1"), "{text}");
    }

    #[test]
    fn wrong_shapes_and_non_manifests_are_refused_clearly() {
        let e = Manifest::parse(&GOOD.replace("instances: 6", "instances: many")).unwrap_err();
        assert!(
            e.to_string()
                .contains("spec.components[0].traits[0].properties: invalid type"),
            "{e}"
        );
        assert!(matches!(
            Manifest::parse("just: text"),
            Err(ManifestError::Parse(_))
        ));
        let e = Manifest::parse(&GOOD.replace("name: shop", "name: 'my shop'")).unwrap_err();
        assert!(e.to_string().contains("metadata.name"), "{e}");
    }

    #[test]
    fn built_in_capabilities_are_link_sources_and_others_are_providers() {
        let with = |image: &str| {
            format!(
                r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {{ name: web }}
spec:
  components:
    - name: httpserver
      type: capability
      properties: {{ image: "{image}" }}
      traits:
        - type: link
          properties: {{ target: site, namespace: wasi, package: http, interfaces: [incoming-handler] }}
    - name: site
      type: component
      properties: {{ image: file:///site.wasm }}
"#
            )
        };
        let m = Manifest::parse(&with("wasmcloud+builtin://http-server")).unwrap();
        let server = &m.spec.components[0];
        assert_eq!(Manifest::builtin_source(server), Some("http"));
        assert!(!Manifest::is_provider(server));
        assert_eq!(m.component_id(server), "http");
        assert_eq!(Manifest::builtin_source(&m.spec.components[1]), None);
        assert!(!Manifest::is_provider(&m.spec.components[1]));
        let m = Manifest::parse(&with("ghcr.io/wasmcloud/http-server:0.23.0")).unwrap();
        let server = &m.spec.components[0];
        assert!(Manifest::is_provider(server));
        assert_eq!(m.component_id(server), "web-httpserver");
        let e = Manifest::parse(&with("x").replace("type: capability", "type: actor")).unwrap_err();
        assert!(e.to_string().contains("spec.components[0].type"), "{e}");
    }
}
