//! Hosts and the CLI authenticate to NATS: user/password, token, nkey, and mutual TLS.

use lattice_testkit::NatsServer;

use crate::common::*;

/// Starts a host with `args` and checks a CLI run with the same `args` lists it, while a CLI
/// run without them is refused with a one-line error.
fn host_and_cli_authenticate(nats: &NatsServer, args: &[String]) {
    let mut spec = host(&nats.url(), "default");
    spec.args.extend(args.iter().cloned());
    let h = spec.start().unwrap();

    let mut cli_args: Vec<&str> = args.iter().map(String::as_str).collect();
    cli_args.extend(["-o", "json", "get", "hosts"]);
    let out = cli_ok(&nats.url(), "default", &cli_args);
    assert!(out.contains(&h.id), "{out}");

    let refused = cli(&nats.url(), "default", &["get", "hosts"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: cannot connect to NATS"), "{err}");
}

#[test]
fn user_and_password() {
    let nats =
        NatsServer::start_with("authorization { users: [ { user: lattice, password: s3cret } ] }")
            .unwrap();
    let args = ["--nats-user", "lattice", "--nats-password", "s3cret"].map(String::from);
    host_and_cli_authenticate(&nats, &args);
}

#[test]
fn token() {
    let nats = NatsServer::start_with("authorization { token: t0ken }").unwrap();
    host_and_cli_authenticate(&nats, &["--nats-token".into(), "t0ken".into()]);
}

#[test]
fn nkey() {
    let user = nkeys::KeyPair::new_user();
    let nats = NatsServer::start_with(&format!(
        "authorization {{ users: [ {{ nkey: {} }} ] }}",
        user.public_key()
    ))
    .unwrap();
    host_and_cli_authenticate(&nats, &["--nats-nkey-seed".into(), user.seed().unwrap()]);
}

#[test]
fn mutual_tls() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, pem: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let issue = |sans: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(sans)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = issue(vec!["127.0.0.1".into(), "localhost".into()]);
    let (client_cert, client_key) = issue(vec!["lattice-host".into()]);
    let ca_file = write("ca.pem", ca.pem());
    let nats = NatsServer::start_with(&format!(
        "tls {{ cert_file: {:?}, key_file: {:?}, ca_file: {ca_file:?}, verify: true, timeout: 2 }}",
        write("server.pem", server_cert),
        write("server-key.pem", server_key),
    ))
    .unwrap();
    let args = [
        "--nats-tls-ca".to_string(),
        ca_file.clone(),
        "--nats-tls-cert".into(),
        write("client.pem", client_cert),
        "--nats-tls-key".into(),
        write("client-key.pem", client_key),
    ];
    host_and_cli_authenticate(&nats, &args);
    // The server verifies clients: the CA alone is not enough.
    let out = cli(
        &nats.url(),
        "default",
        &["--nats-tls-ca", &ca_file, "--timeout", "1s", "get", "hosts"],
    );
    assert!(
        !out.status.success(),
        "a client without a certificate got in"
    );
}
