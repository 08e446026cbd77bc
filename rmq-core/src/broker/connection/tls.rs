//! TLS: the crypto provider, the certificate files and the insecure opt-in.

use std::path::Path;
use std::sync::Once;

use redis::{ClientTlsConfig, ConnectionAddr, ConnectionInfo, TlsCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Config, Error};

/// Installs rustls' *ring* provider as the process default, unless the
/// application installed one already. rustls panics at the first TLS
/// connection when no default is installed and more than one provider
/// (or none) is compiled in.
pub(super) fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // An `Err` means another thread installed one meanwhile.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

pub(super) fn client(
    config: &Config,
    info: ConnectionInfo,
    masked: &str,
) -> Result<redis::Client, Error> {
    install_crypto_provider();
    let mut info = info;
    if let ConnectionAddr::TcpTls {
        host,
        port,
        insecure,
        tls_params,
    } = info.addr().clone()
    {
        let insecure = insecure || config.tls_insecure;
        if insecure {
            tracing::warn!(
                url = %masked,
                "TLS certificate checks are off (`tls_insecure` / REDIS_TLS_INSECURE or `#insecure` in the URL): \
                 the server is not authenticated, so anyone on the network path can read and change the traffic; \
                 use this for tests only, and `tls_ca_file` to trust a private CA"
            );
        }
        info = info.set_addr(ConnectionAddr::TcpTls {
            host,
            port,
            insecure,
            tls_params,
        });
    }
    let root_cert = match &config.tls_ca_file {
        Some(path) => Some(read_certificates("tls_ca_file", "REDIS_TLS_CA_FILE", path)?),
        None => None,
    };
    let client_tls = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: read_certificates("tls_cert_file", "REDIS_TLS_CERT_FILE", cert)?,
            client_key: read_key(key)?,
        }),
        // `Config::validate` rejects one without the other.
        _ => None,
    };
    let built = if root_cert.is_none() && client_tls.is_none() {
        redis::Client::open(info)
    } else {
        redis::Client::build_with_tls(
            info,
            TlsCertificates {
                client_tls,
                root_cert,
            },
        )
    };
    built.map_err(|e| Error::Config {
        option: "redis_url",
        rule: format!("cannot be used with the TLS settings ({e}); got `{masked}`"),
    })
}

fn read(option: &'static str, env: &str, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::Config {
        option,
        rule: format!(
            "must name a readable PEM file ({env}); cannot read `{}`: {e}",
            path.display()
        ),
    })
}

/// The bytes of a PEM file holding at least one certificate.
fn read_certificates(option: &'static str, env: &str, path: &Path) -> Result<Vec<u8>, Error> {
    let pem = read(option, env, path)?;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        cert.map_err(|e| Error::Config {
            option,
            rule: format!(
                "must be a PEM file of certificates ({env}); `{}` does not parse: {e}",
                path.display()
            ),
        })?;
        count += 1;
    }
    if count == 0 {
        return Err(Error::Config {
            option,
            rule: format!(
                "must be a PEM file of certificates ({env}); `{}` holds no `-----BEGIN CERTIFICATE-----` block",
                path.display()
            ),
        });
    }
    Ok(pem)
}

/// The bytes of a PEM file holding a private key. Parse errors are not
/// quoted: they could echo key material.
fn read_key(path: &Path) -> Result<Vec<u8>, Error> {
    let pem = read("tls_key_file", "REDIS_TLS_KEY_FILE", path)?;
    if PrivateKeyDer::from_pem_slice(&pem).is_err() {
        return Err(Error::Config {
            option: "tls_key_file",
            rule: format!(
                "must be a PEM file holding the client certificate's private key (PKCS#8, PKCS#1 or SEC1; REDIS_TLS_KEY_FILE); `{}` holds none",
                path.display()
            ),
        });
    }
    Ok(pem)
}

/// What went wrong in the TLS layer, and what to change, if `error`
/// comes from it.
pub(super) fn problem(config: &Config, error: &redis::RedisError) -> Option<String> {
    use rustls::{AlertDescription as Alert, CertificateError as Cert};

    let tls_error = rustls_error(error)?;
    let text = tls_error.to_string();
    let ca = match &config.tls_ca_file {
        Some(path) => format!("the CA in tls_ca_file (`{}`)", path.display()),
        None => "the public web PKI roots (no tls_ca_file is set)".to_owned(),
    };
    let client_cert = config.tls_cert_file.is_some();
    Some(match tls_error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            Cert::UnknownIssuer | Cert::BadSignature => format!(
                "the server's certificate is not signed by a trusted CA ({text}): this client trusts {ca}; \
                 set tls_ca_file / REDIS_TLS_CA_FILE to the PEM of the CA that signed the server's certificate"
            ),
            Cert::NotValidForName | Cert::NotValidForNameContext { .. } => format!(
                "the server's certificate is not valid for the host name in redis_url ({text}): \
                 connect by a name the certificate lists, or have the certificate issued for this name"
            ),
            Cert::Expired | Cert::ExpiredContext { .. } | Cert::NotValidYet | Cert::NotValidYetContext { .. } => format!(
                "the server's certificate is outside its validity period ({text}): renew it, or check this machine's clock"
            ),
            _ => format!("the server's certificate was refused ({text}); check the server's certificate and tls_ca_file"),
        },
        rustls::Error::AlertReceived(Alert::CertificateRequired) => format!(
            "the server requires a client certificate (mutual TLS) ({text}): set tls_cert_file / REDIS_TLS_CERT_FILE and tls_key_file / REDIS_TLS_KEY_FILE"
        ),
        rustls::Error::AlertReceived(
            Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateUnknown
            | Alert::CertificateExpired
            | Alert::CertificateRevoked
            | Alert::UnsupportedCertificate
            | Alert::AccessDenied
            | Alert::HandshakeFailure,
        ) if client_cert => format!(
            "the server refused the client certificate ({text}): check that tls_cert_file is signed by a CA the server trusts (its tls-ca-cert-file) and is valid"
        ),
        rustls::Error::AlertReceived(_) if !client_cert => format!(
            "the server ended the TLS handshake ({text}); if it requires a client certificate (`tls-auth-clients yes`), set tls_cert_file and tls_key_file"
        ),
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => format!(
            "the server did not answer in TLS ({text}): is the port in redis_url a TLS port? a plain port needs `redis://`"
        ),
        _ => format!("the TLS handshake failed ({text}); check the server's TLS settings and tls_* options"),
    })
}

/// The rustls error inside a redis error: directly, or in the I/O error
/// a TLS stream reports.
fn rustls_error(error: &redis::RedisError) -> Option<&rustls::Error> {
    use std::error::Error as StdError;
    use std::sync::Arc;

    let source = StdError::source(error)?;
    // redis keeps its inner error in an `Arc`.
    let inner: &(dyn StdError + 'static) =
        match source.downcast_ref::<Arc<dyn StdError + Send + Sync>>() {
            Some(arc) => &**arc,
            None => source,
        };
    if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    inner
        .downcast_ref::<std::io::Error>()?
        .get_ref()?
        .downcast_ref::<rustls::Error>()
}
