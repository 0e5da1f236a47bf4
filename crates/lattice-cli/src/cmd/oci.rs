//! Registry access (addresses, credentials, timeouts) from the command line, for a host's
//! pulls and for `lattice push`.

use lattice_oci::{OciConfig, RegistryCredentials};

/// Registry access from the command line; credentials, if any, for `registry` only.
pub fn oci_config(
    args: &crate::args::OciArgs,
    registry: Option<&str>,
) -> anyhow::Result<OciConfig> {
    let given = args.oci_user.is_some() || args.oci_password.is_some() || args.oci_token.is_some();
    let mut credentials = std::collections::HashMap::new();
    match (given, registry) {
        (true, None) => anyhow::bail!(
            "--oci-user/--oci-password/--oci-token need --oci-registry: credentials go only to the registry they are given for"
        ),
        (true, Some(r)) => {
            credentials.insert(
                r.to_string(),
                RegistryCredentials {
                    username: args.oci_user.clone(),
                    password: args.oci_password.clone(),
                    token: args.oci_token.clone(),
                },
            );
        }
        (false, _) => {}
    }
    Ok(OciConfig {
        insecure_registries: args.oci_insecure.clone(),
        allow_latest: args.oci_allow_latest,
        credentials,
        pull_timeout: args.oci_pull_timeout,
    })
}
