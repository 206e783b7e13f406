//! [`TestCa`]: a throwaway certificate authority and one leaf certificate it signed, for the
//! loopback servers of the tests (clients trust the CA through `SSL_CERT_FILE` or
//! `HttpOptions::extra_ca_file`).

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A test CA and a leaf certificate (with its key) for some host names.
pub struct TestCa {
    /// The CA's certificate (PEM), what clients trust.
    pub ca_pem: String,
    ca_der: CertificateDer<'static>,
    /// The leaf certificate (PEM), for servers configured by file.
    pub cert_pem: String,
    cert_der: CertificateDer<'static>,
    /// The leaf's private key (PEM, PKCS #8).
    pub key_pem: String,
    key_der: Vec<u8>,
}

impl TestCa {
    /// A new CA named `name` and a server certificate for `hosts`.
    pub fn new(name: &str, hosts: &[&str]) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, name);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let mut leaf_params =
            CertificateParams::new(hosts.iter().map(ToString::to_string).collect::<Vec<_>>())
                .unwrap();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        Self {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            cert_pem: leaf_cert.pem(),
            cert_der: leaf_cert.der().clone(),
            key_pem: leaf_key.serialize_pem(),
            key_der: leaf_key.serialize_der(),
        }
    }

    /// A rustls server configuration presenting the leaf (and the CA) certificate.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let chain = vec![self.cert_der.clone(), self.ca_der.clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        Arc::new(config)
    }
}
