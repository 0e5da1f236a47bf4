//! `registry.put`: credentials for OCI registries, taken by every host.

use std::collections::BTreeMap;

use lattice_proto::{decode_request, CtlResponse};
use serde::Deserialize;

use super::reply::Handled;
use crate::components::Components;
use crate::oci::RegistryCredentials;

#[derive(Deserialize)]
struct Credential {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default, rename = "registryType")]
    registry_type: Option<String>,
}

pub(super) fn put(components: &Components, body: &[u8]) -> Handled {
    const EXPECTED: &str = "map of registry to {username, password, token, registryType}";
    // Objects first: serde would also build a struct from a JSON array.
    let raw: BTreeMap<String, serde_json::Map<String, serde_json::Value>> =
        match decode_request(body, EXPECTED) {
            Ok(m) => m,
            Err(e) => return Handled::error(e.to_string()),
        };
    let mut map = BTreeMap::new();
    for (registry, fields) in raw {
        match serde_json::from_value::<Credential>(serde_json::Value::Object(fields)) {
            Ok(c) => map.insert(registry, c),
            Err(e) => {
                return Handled::error(format!("registry {registry}: {e} (expected {EXPECTED})"))
            }
        };
    }
    if let Some((r, _)) = map
        .iter()
        .find(|(_, c)| c.registry_type.as_deref().is_some_and(|t| t != "oci"))
    {
        return Handled::error(format!(
            "registry {r}: only registryType \"oci\" is supported"
        ));
    }
    for (registry, c) in map {
        components.oci().set_credentials(
            &registry,
            RegistryCredentials {
                username: c.username,
                password: c.password,
                token: c.token,
            },
        );
    }
    Handled::reply(CtlResponse::success())
}
