//! Streaming client-side encryption in the `age` format: the dump is encrypted in 64 KiB
//! ChaCha20-Poly1305 chunks as it streams, so neither side holds more than a chunk. The stored
//! object can be decrypted with the `age`/`rage` command line tools, without watchkeeper.
//!
//! The key Secret holds either an age X25519 identity (`AGE-SECRET-KEY-1…`, from `age-keygen`;
//! recommended: no key derivation, the public key is derived from it) or a passphrase. A
//! passphrase goes through scrypt with a fixed work factor of 2^[`SCRYPT_LOG_N`] (32 MiB, a
//! fraction of a second) instead of age's default, which calibrates to about a second and up to
//! 1 GiB of memory on a fast machine and would break the agent's memory bound: use a long random
//! passphrase (e.g. `openssl rand -base64 32`), not a human-memorable one.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex, PoisonError};

use age::secrecy::SecretString;

/// Problems encrypting or decrypting.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The encryptor could not start or write.
    #[error("encryption failed: {0}")]
    Encrypt(String),
    /// Wrong passphrase, not an age file, or a corrupted/truncated object.
    #[error("decryption failed (wrong passphrase or damaged object?): {0}")]
    Decrypt(String),
}

/// A `Write` target whose bytes another handle takes out after each write: lets the age
/// encryptor (a `Write` adapter) sit inside an async copy loop without a thread.
#[derive(Clone, Default)]
pub struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    /// Takes everything written so far.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// scrypt work factor (log2 N) for passphrases: 32 MiB of memory per derivation.
pub const SCRYPT_LOG_N: u8 = 15;
/// Highest scrypt work factor accepted when decrypting (age's CLI writes about 18).
const SCRYPT_MAX_LOG_N: u8 = 22;

/// Encryption scheme recorded in manifests for an X25519 identity.
pub const AGE_X25519: &str = "age-x25519";
/// Encryption scheme recorded in manifests for a passphrase.
pub const AGE_SCRYPT: &str = "age-scrypt";

/// The key from the Secret.
enum Key {
    Identity(age::x25519::Identity),
    Passphrase(SecretString),
}

fn parse_key(secret: &str) -> Result<Key, String> {
    let trimmed = secret.trim();
    if trimmed.starts_with("AGE-SECRET-KEY-1") {
        trimmed
            .parse::<age::x25519::Identity>()
            .map(Key::Identity)
            .map_err(|_| "the key looks like an age identity but does not parse".to_string())
    } else {
        Ok(Key::Passphrase(SecretString::from(secret.to_owned())))
    }
}

/// The scheme name a key encrypts with ([`AGE_X25519`] or [`AGE_SCRYPT`]).
pub fn scheme(secret: &str) -> &'static str {
    match parse_key(secret) {
        Ok(Key::Identity(_)) => AGE_X25519,
        _ => AGE_SCRYPT,
    }
}

/// Encrypts what is written into it to a [`SharedBuffer`].
pub struct Encrypting {
    writer: age::stream::StreamWriter<SharedBuffer>,
    out: SharedBuffer,
}

impl Encrypting {
    /// Starts an age stream for `secret` (identity or passphrase); the header is available
    /// from [`Self::take`].
    pub fn new(secret: &str) -> Result<Self, CryptoError> {
        let out = SharedBuffer::default();
        let encryptor = match parse_key(secret).map_err(CryptoError::Encrypt)? {
            Key::Identity(identity) => {
                let recipient = identity.to_public();
                age::Encryptor::with_recipients(std::iter::once(&recipient as _))
            }
            Key::Passphrase(passphrase) => {
                let mut recipient = age::scrypt::Recipient::new(passphrase);
                recipient.set_work_factor(SCRYPT_LOG_N);
                age::Encryptor::with_recipients(std::iter::once(&recipient as _))
            }
        }
        .map_err(|e| CryptoError::Encrypt(e.to_string()))?;
        let writer = encryptor
            .wrap_output(out.clone())
            .map_err(|e| CryptoError::Encrypt(e.to_string()))?;
        Ok(Encrypting { writer, out })
    }

    /// Encrypts `plain`; complete ciphertext chunks become available from [`Self::take`].
    pub fn write(&mut self, plain: &[u8]) -> Result<(), CryptoError> {
        self.writer
            .write_all(plain)
            .map_err(|e| CryptoError::Encrypt(e.to_string()))
    }

    /// Ciphertext produced so far and not yet taken.
    pub fn take(&self) -> Vec<u8> {
        self.out.take()
    }

    /// Writes the final chunk and returns the remaining ciphertext.
    pub fn finish(self) -> Result<Vec<u8>, CryptoError> {
        let out = self
            .writer
            .finish()
            .map_err(|e| CryptoError::Encrypt(e.to_string()))?;
        Ok(out.take())
    }
}

/// A reader of the plaintext of the age stream in `input`, for `secret` (identity or
/// passphrase).
pub fn decrypting<R: Read>(input: R, secret: &str) -> Result<impl Read + use<R>, CryptoError> {
    let decryptor = age::Decryptor::new(input).map_err(|e| CryptoError::Decrypt(e.to_string()))?;
    let result = match parse_key(secret).map_err(CryptoError::Decrypt)? {
        Key::Identity(identity) => {
            decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity))
        }
        Key::Passphrase(passphrase) => {
            let mut identity = age::scrypt::Identity::new(passphrase);
            identity.set_max_work_factor(SCRYPT_MAX_LOG_N);
            decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity))
        }
    };
    result.map_err(|e| CryptoError::Decrypt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_pieces_and_wrong_passphrase() {
        let plain: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut enc = Encrypting::new("correct horse").unwrap();
        let mut cipher = Vec::new();
        for piece in plain.chunks(7_000) {
            enc.write(piece).unwrap();
            cipher.extend(enc.take());
        }
        cipher.extend(enc.finish().unwrap());
        assert!(cipher.starts_with(b"age-encryption.org/v1"));
        assert_eq!(scheme("correct horse"), AGE_SCRYPT);
        // The fixed work factor is in the header (`-> scrypt <salt> 15`).
        let header = String::from_utf8_lossy(&cipher[..200]).to_string();
        assert!(header.contains(&format!(" {SCRYPT_LOG_N}\n")), "{header}");
        assert!(
            !cipher.windows(64).any(|w| w == &plain[1000..1064]),
            "plaintext visible in the ciphertext"
        );
        let mut back = Vec::new();
        decrypting(&cipher[..], "correct horse")
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, plain);
        let err = decrypting(&cipher[..], "wrong").err().unwrap().to_string();
        assert!(err.contains("decryption failed"), "{err}");
        // A truncated stream fails instead of yielding a silently short plaintext.
        let mut short = Vec::new();
        let result = decrypting(&cipher[..cipher.len() - 10], "correct horse")
            .unwrap()
            .read_to_end(&mut short);
        assert!(result.is_err());
    }

    #[test]
    fn x25519_identity_round_trip() {
        use age::secrecy::ExposeSecret;
        let identity = age::x25519::Identity::generate();
        let secret = format!("{}\n", identity.to_string().expose_secret());
        assert_eq!(scheme(&secret), AGE_X25519);
        let mut enc = Encrypting::new(&secret).unwrap();
        enc.write(b"hello dump").unwrap();
        let mut cipher = enc.take();
        cipher.extend(enc.finish().unwrap());
        assert!(String::from_utf8_lossy(&cipher[..100]).contains("X25519"));
        let mut back = Vec::new();
        decrypting(&cipher[..], &secret)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, b"hello dump");
        let other = age::x25519::Identity::generate();
        assert!(decrypting(&cipher[..], other.to_string().expose_secret()).is_err());
        assert!(Encrypting::new("AGE-SECRET-KEY-1NOTAKEY").is_err());
    }
}
