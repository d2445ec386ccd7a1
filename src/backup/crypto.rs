//! Streaming client-side encryption with the `age` format and a passphrase (scrypt) recipient:
//! the dump is encrypted in 64 KiB ChaCha20-Poly1305 chunks as it streams, so neither side
//! holds more than a chunk. The stored object can be decrypted with the `age`/`rage` command
//! line tools and the passphrase, without watchkeeper.

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

/// Encrypts what is written into it to a [`SharedBuffer`].
pub struct Encrypting {
    writer: age::stream::StreamWriter<SharedBuffer>,
    out: SharedBuffer,
}

impl Encrypting {
    /// Starts an age stream for `passphrase`; the header is available from [`Self::take`].
    pub fn new(passphrase: &str) -> Result<Self, CryptoError> {
        let out = SharedBuffer::default();
        let encryptor =
            age::Encryptor::with_user_passphrase(SecretString::from(passphrase.to_owned()));
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

/// A reader of the plaintext of the age stream in `input`, for `passphrase`.
pub fn decrypting<R: Read>(input: R, passphrase: &str) -> Result<impl Read + use<R>, CryptoError> {
    let decryptor = age::Decryptor::new(input).map_err(|e| CryptoError::Decrypt(e.to_string()))?;
    let identity = age::scrypt::Identity::new(SecretString::from(passphrase.to_owned()));
    decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|e| CryptoError::Decrypt(e.to_string()))
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
}
