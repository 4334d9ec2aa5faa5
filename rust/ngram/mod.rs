//! N-gram language models: counts of any order ([`counts`]), the add-k model over characters
//! ([`addk`], `AddKLM`), the smoothed model family over any token ids ([`model`]: MLE, add-k,
//! Witten-Bell, absolute discounting, Kneser-Ney, modified Kneser-Ney as KenLM's `lmplz`,
//! stupid backoff), ARPA files ([`arpa`]) and word vocabularies ([`words`]).

pub mod addk;
pub mod arpa;
pub mod counts;
pub mod model;
pub mod probe;
pub mod sorted;
pub mod words;

pub use counts::NgramCounts;
