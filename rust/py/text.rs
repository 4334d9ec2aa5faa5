//! Bindings for tokenization, vocabularies, n-gram counts and the add-k model.

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyString};

use super::convert::{arg, extract_text, extract_texts, Arrays, Surrogates};
use super::errors::invalid_argument;
use crate::ngram::addk::{NgramModel, Score};
use crate::ngram::NgramCounts;
use crate::parallel::with_threads;
use crate::tokenize::{CharSet, Tokenizer, Vocab, JA_PUNCTUATION, SEED_PUNCTUATION};

fn tokenizer(
    normalize: bool,
    lowercase: bool,
    punctuation: &str,
    nfkc: bool,
    keep_spaces: bool,
) -> Tokenizer {
    Tokenizer {
        normalize,
        lowercase,
        nfkc,
        keep_spaces,
        punctuation: CharSet::new(punctuation),
    }
}

#[pyfunction]
#[pyo3(signature = (text, *, lowercase=true, punctuation=SEED_PUNCTUATION.to_string(), nfkc=false, errors="strict"))]
fn normalize(
    py: Python<'_>,
    text: &Bound<'_, PyAny>,
    lowercase: bool,
    #[pyo3(from_py_with = arg::punctuation)] punctuation: String,
    nfkc: bool,
    errors: &str,
) -> PyResult<String> {
    let text = extract_text(text, "text", Surrogates::parse(errors)?)?;
    let tok = tokenizer(true, lowercase, &punctuation, nfkc, false);
    Ok(py.detach(|| tok.normalize_text(&text)))
}

#[pyfunction]
#[pyo3(signature = (texts, *, lowercase=true, punctuation=SEED_PUNCTUATION.to_string(), nfkc=false, errors="strict", num_threads=None))]
#[allow(clippy::too_many_arguments)]
fn normalize_batch(
    py: Python<'_>,
    texts: &Bound<'_, PyAny>,
    lowercase: bool,
    #[pyo3(from_py_with = arg::punctuation)] punctuation: String,
    nfkc: bool,
    errors: &str,
    #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
) -> PyResult<Vec<String>> {
    use rayon::prelude::*;
    let texts = extract_texts(texts, "texts", Surrogates::parse(errors)?)?;
    let tok = tokenizer(true, lowercase, &punctuation, nfkc, false);
    Ok(py.detach(|| {
        with_threads(num_threads, || {
            texts.par_iter().map(|t| tok.normalize_text(t)).collect()
        })
    })?)
}

#[pyfunction]
#[pyo3(signature = (text, *, lowercase=true, punctuation=SEED_PUNCTUATION.to_string(), nfkc=false, keep_spaces=false, normalize=true, errors="strict"))]
#[allow(clippy::too_many_arguments)]
fn char_tokenize(
    text: &Bound<'_, PyAny>,
    lowercase: bool,
    #[pyo3(from_py_with = arg::punctuation)] punctuation: String,
    nfkc: bool,
    keep_spaces: bool,
    normalize: bool,
    errors: &str,
) -> PyResult<Vec<String>> {
    let text = extract_text(text, "text", Surrogates::parse(errors)?)?;
    let tok = tokenizer(normalize, lowercase, &punctuation, nfkc, keep_spaces);
    Ok(tok.tokens(&text).into_iter().map(String::from).collect())
}

/// The core vocabulary; `textsieve.Vocab` wraps it with file and pickle support.
#[pyclass(module = "textsieve._core", name = "Vocab", frozen)]
pub struct PyVocab {
    pub inner: Vocab,
}

#[pymethods]
impl PyVocab {
    #[new]
    #[pyo3(signature = (tokens, unk=Some("<unk>".to_string()), *, normalize=true, lowercase=true, punctuation=SEED_PUNCTUATION.to_string(), nfkc=false, keep_spaces=false))]
    fn new(
        #[pyo3(from_py_with = arg::tokens)] tokens: Vec<String>,
        #[pyo3(from_py_with = arg::unk)] unk: Option<String>,
        normalize: bool,
        lowercase: bool,
        #[pyo3(from_py_with = arg::punctuation)] punctuation: String,
        nfkc: bool,
        keep_spaces: bool,
    ) -> PyResult<Self> {
        let tok = tokenizer(normalize, lowercase, &punctuation, nfkc, keep_spaces);
        let inner = Vocab::new(tokens, unk.as_deref(), tok)?;
        Ok(PyVocab { inner })
    }

    #[staticmethod]
    #[pyo3(signature = (texts, unk=Some("<unk>".to_string()), *, normalize=true, lowercase=true, punctuation=SEED_PUNCTUATION.to_string(), nfkc=false, keep_spaces=false, errors="strict", num_threads=None))]
    #[allow(clippy::too_many_arguments)]
    fn from_texts(
        py: Python<'_>,
        texts: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::unk)] unk: Option<String>,
        normalize: bool,
        lowercase: bool,
        #[pyo3(from_py_with = arg::punctuation)] punctuation: String,
        nfkc: bool,
        keep_spaces: bool,
        errors: &str,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<Self> {
        let texts = extract_texts(texts, "texts", Surrogates::parse(errors)?)?;
        let tok = tokenizer(normalize, lowercase, &punctuation, nfkc, keep_spaces);
        let inner = py.detach(|| {
            with_threads(num_threads, || {
                Vocab::from_texts(&texts, unk.as_deref(), tok)
            })
        })??;
        Ok(PyVocab { inner })
    }

    #[getter]
    fn tokens(&self) -> Vec<String> {
        self.inner.tokens().to_vec()
    }

    #[getter]
    fn unk(&self) -> Option<String> {
        self.inner.unk_token().map(str::to_owned)
    }

    #[getter]
    fn unk_id(&self) -> Option<u32> {
        self.inner.unk_id()
    }

    /// The tokenizer options as keyword arguments for `Vocab(...)`.
    #[getter]
    fn options(&self) -> (bool, bool, String, bool, bool) {
        let t = &self.inner.tokenizer;
        (
            t.normalize,
            t.lowercase,
            t.punctuation.chars(),
            t.nfkc,
            t.keep_spaces,
        )
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// The id of `token`; None when it is not in the vocabulary (nor can be: a lone surrogate).
    fn id_of(&self, token: &Bound<'_, PyString>) -> Option<u32> {
        self.inner.id_of(token.to_str().ok()?)
    }

    /// The token of `id`; None when out of range, however large the int.
    fn token_of(&self, id: &Bound<'_, PyInt>) -> Option<String> {
        let id = id.extract::<u32>().ok()?;
        self.inner.token_of(id).map(str::to_owned)
    }

    fn tokenize(&self, text: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        let text = extract_text(text, "text", Surrogates::Strict)?;
        Ok(self
            .inner
            .tokenizer
            .tokens(&text)
            .into_iter()
            .map(String::from)
            .collect())
    }

    #[pyo3(signature = (text, *, errors="strict"))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyAny>,
        errors: &str,
    ) -> PyResult<Bound<'py, PyArray1<i32>>> {
        let text = extract_text(text, "text", Surrogates::parse(errors)?)?;
        let ids = py.detach(|| self.inner.encode(&text))?;
        Ok(ids
            .into_iter()
            .map(|i| i as i32)
            .collect::<Vec<_>>()
            .into_pyarray(py))
    }

    #[pyo3(signature = (texts, *, errors="strict", num_threads=None))]
    fn encode_batch<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        errors: &str,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<Vec<Bound<'py, PyArray1<i32>>>> {
        let texts = extract_texts(texts, "texts", Surrogates::parse(errors)?)?;
        let all = py.detach(|| with_threads(num_threads, || self.inner.encode_batch(&texts)))??;
        Ok(all
            .into_iter()
            .map(|ids| {
                ids.into_iter()
                    .map(|i| i as i32)
                    .collect::<Vec<_>>()
                    .into_pyarray(py)
            })
            .collect())
    }

    fn encode_tokens<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::tokens)] tokens: Vec<String>,
    ) -> PyResult<Bound<'py, PyArray1<i32>>> {
        let ids = self.inner.encode_tokens(&tokens)?;
        Ok(ids
            .into_iter()
            .map(|i| i as i32)
            .collect::<Vec<_>>()
            .into_pyarray(py))
    }

    fn decode(&self, ids: PyReadonlyArray1<'_, i64>) -> PyResult<String> {
        Ok(self.inner.decode(ids.as_slice()?)?)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyVocab>()
            .map(|o| o.get().inner == self.inner)
            .unwrap_or(false)
    }
}

fn scores_to_arrays(
    py: Python<'_>,
    scores: Vec<Score>,
) -> Arrays<'_, PyArray1<f64>, PyArray1<u64>> {
    let nll: Vec<f64> = scores.iter().map(|s| s.nll).collect();
    let n: Vec<u64> = scores.iter().map(|s| s.n).collect();
    (nll.into_pyarray(py), n.into_pyarray(py))
}

/// Counts of one order over a vocabulary, and the add-k scoring on top of them.
#[pyclass(module = "textsieve._core", name = "NgramModel")]
pub struct PyNgramModel {
    inner: NgramModel,
}

#[pymethods]
impl PyNgramModel {
    #[new]
    #[pyo3(signature = (vocab, order, pad=false))]
    fn new(
        vocab: &Bound<'_, PyVocab>,
        #[pyo3(from_py_with = arg::order)] order: usize,
        pad: bool,
    ) -> PyResult<Self> {
        let inner = NgramModel::new(vocab.get().inner.clone(), order, pad)?;
        Ok(PyNgramModel { inner })
    }

    /// A model over the vocabulary of `texts`, fitted on them, tokenizing them once.
    #[staticmethod]
    #[pyo3(signature = (texts, order, pad=false, unk=Some("<unk>".to_string()), *, normalize=true, lowercase=true, punctuation=SEED_PUNCTUATION.to_string(), nfkc=false, keep_spaces=false, errors="strict", num_threads=None))]
    #[allow(clippy::too_many_arguments)]
    fn from_texts(
        py: Python<'_>,
        texts: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::order)] order: usize,
        pad: bool,
        #[pyo3(from_py_with = arg::unk)] unk: Option<String>,
        normalize: bool,
        lowercase: bool,
        #[pyo3(from_py_with = arg::punctuation)] punctuation: String,
        nfkc: bool,
        keep_spaces: bool,
        errors: &str,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<Self> {
        let texts = extract_texts(texts, "texts", Surrogates::parse(errors)?)?;
        let tok = tokenizer(normalize, lowercase, &punctuation, nfkc, keep_spaces);
        let inner = py.detach(|| {
            with_threads(num_threads, || {
                NgramModel::from_texts(&texts, unk.as_deref(), tok, order, pad)
            })
        })??;
        Ok(PyNgramModel { inner })
    }

    #[staticmethod]
    #[pyo3(signature = (vocab, order, pad, ids, counts))]
    fn from_entries(
        vocab: &Bound<'_, PyVocab>,
        #[pyo3(from_py_with = arg::order)] order: usize,
        pad: bool,
        ids: PyReadonlyArray1<'_, u32>,
        counts: PyReadonlyArray1<'_, u64>,
    ) -> PyResult<Self> {
        let mut inner = NgramModel::new(vocab.get().inner.clone(), order, pad)?;
        inner.counts = NgramCounts::from_entries(
            order,
            inner.id_space(),
            ids.as_slice()?,
            counts.as_slice()?,
        )?;
        Ok(PyNgramModel { inner })
    }

    #[getter]
    fn vocab(&self) -> PyVocab {
        PyVocab {
            inner: self.inner.vocab.clone(),
        }
    }

    #[getter]
    fn order(&self) -> usize {
        self.inner.order()
    }

    #[getter]
    fn pad(&self) -> bool {
        self.inner.pad
    }

    #[getter]
    fn id_space(&self) -> u32 {
        self.inner.id_space()
    }

    #[getter]
    fn total(&self) -> u64 {
        self.inner.counts.total()
    }

    #[getter]
    fn distinct(&self) -> usize {
        self.inner.counts.distinct()
    }

    #[pyo3(signature = (texts, *, errors="strict", num_threads=None))]
    fn fit(
        &mut self,
        py: Python<'_>,
        texts: &Bound<'_, PyAny>,
        errors: &str,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<()> {
        let texts = extract_texts(texts, "texts", Surrogates::parse(errors)?)?;
        let inner = &mut self.inner;
        Ok(py.detach(|| with_threads(num_threads, || inner.fit(&texts)))??)
    }

    fn merge(&mut self, other: &Bound<'_, PyNgramModel>) -> PyResult<()> {
        let other = other.borrow();
        if other.inner.vocab != self.inner.vocab || other.inner.pad != self.inner.pad {
            return Err(invalid_argument(
                "other",
                "counts over a different vocabulary or padding cannot be merged",
            ));
        }
        Ok(self.inner.add_counts(&other.inner.counts)?)
    }

    fn copy(&self) -> Self {
        PyNgramModel {
            inner: self.inner.clone(),
        }
    }

    fn count(&self, gram: Vec<u32>) -> u64 {
        self.inner.counts.count(&gram)
    }

    fn context_count(&self, context: Vec<u32>) -> u64 {
        self.inner.counts.context_count(&context)
    }

    /// `(ids (m, order) int32, counts (m,) uint64)` in lexicographic order.
    fn entries<'py>(&self, py: Python<'py>) -> PyResult<Arrays<'py, PyArray2<i32>, PyArray1<u64>>> {
        let (ids, counts) = self.inner.counts.entries();
        let order = self.inner.order();
        let ids: Vec<i32> = ids.into_iter().map(|i| i as i32).collect();
        let arr = ids.into_pyarray(py).reshape([counts.len(), order])?;
        Ok((arr, counts.into_pyarray(py)))
    }

    #[pyo3(signature = (max_cells=16_777_216))]
    fn dense_bigrams<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::max_cells)] max_cells: usize,
    ) -> PyResult<Bound<'py, PyArray2<u64>>> {
        let v = self.inner.id_space() as usize;
        let m = self.inner.counts.dense_bigrams(max_cells)?;
        m.into_pyarray(py).reshape([v, v])
    }

    fn prob(&self, context: Vec<u32>, token: u32, k: f64) -> PyResult<f64> {
        Ok(self.inner.prob(&context, token, k)?)
    }

    /// Per-document `(nll sums, predicted token counts)`.
    #[pyo3(signature = (texts, k, *, errors="strict", num_threads=None))]
    fn score<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        k: f64,
        errors: &str,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<Arrays<'py, PyArray1<f64>, PyArray1<u64>>> {
        let texts = extract_texts(texts, "texts", Surrogates::parse(errors)?)?;
        let scores =
            py.detach(|| with_threads(num_threads, || self.inner.score_texts(&texts, k)))??;
        Ok(scores_to_arrays(py, scores))
    }

    /// Corpus `(nll sum, predicted token count)`.
    #[pyo3(signature = (texts, k, *, errors="strict", num_threads=None))]
    fn corpus_score(
        &self,
        py: Python<'_>,
        texts: &Bound<'_, PyAny>,
        k: f64,
        errors: &str,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<(f64, u64)> {
        let texts = extract_texts(texts, "texts", Surrogates::parse(errors)?)?;
        let s =
            py.detach(|| with_threads(num_threads, || self.inner.corpus_score(&texts, k)))??;
        Ok((s.nll, s.n))
    }

    fn sample(
        &self,
        start: Vec<u32>,
        #[pyo3(from_py_with = arg::length)] length: usize,
        k: f64,
        temperature: f64,
        #[pyo3(from_py_with = arg::seed)] seed: u64,
    ) -> PyResult<Vec<u32>> {
        Ok(self.inner.sample(&start, length, k, temperature, seed)?)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // the Unicode tables this build follows: case mapping and whitespace (the Rust standard
    // library of the compiler that built it), NFKC (the unicode-normalization crate)
    let versions = pyo3::types::PyDict::new(m.py());
    versions.set_item("case", char::UNICODE_VERSION)?;
    versions.set_item("nfkc", unicode_normalization::UNICODE_VERSION)?;
    m.add("UNICODE_VERSIONS", versions)?;
    m.add("SEED_PUNCTUATION", SEED_PUNCTUATION)?;
    m.add("JA_PUNCTUATION", JA_PUNCTUATION)?;
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    m.add_function(wrap_pyfunction!(normalize_batch, m)?)?;
    m.add_function(wrap_pyfunction!(char_tokenize, m)?)?;
    m.add_class::<PyVocab>()?;
    m.add_class::<PyNgramModel>()?;
    Ok(())
}
