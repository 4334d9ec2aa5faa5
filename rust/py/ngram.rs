//! Bindings for the smoothed n-gram model family over token ids and ARPA files.

use std::io::BufWriter;

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyUntypedArray};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};

use super::convert::{arg, extract_texts, Arrays, FromName, Named, Surrogates};
use crate::error::Result;
use crate::ngram::arpa;
use crate::ngram::model::{Counts, Model, Padding, Shape, Smoothing};
use crate::ngram::words::WordIndex;
use crate::parallel::with_threads;

impl FromName for Padding {
    const ARG: &'static str = "pad";
    fn from_name(name: &str) -> Result<Self> {
        Padding::parse(name)
    }
}

/// The words that name ids in an ARPA file: a list of str, or a `WordIndex`, read where it is
/// (a list made from it held a second copy of the vocabulary while the file was written).
enum ArpaWords {
    List(Vec<String>),
    Index(Py<PyWordIndex>),
}

impl ArpaWords {
    fn from_py(words: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(index) = words.cast::<PyWordIndex>() {
            return Ok(ArpaWords::Index(index.clone().unbind()));
        }
        let list = words.extract().map_err(|e| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "words: expected a list of str or a WordIndex ({e})"
            ))
        })?;
        Ok(ArpaWords::List(list))
    }

    fn get(&self) -> &dyn arpa::Words {
        match self {
            ArpaWords::List(v) => v,
            ArpaWords::Index(i) => &i.get().inner,
        }
    }
}

/// A Python binary file object as a `Write` (the caller holds the GIL).
struct PyFile<'py> {
    fh: Bound<'py, PyAny>,
}

impl std::io::Write for PyFile<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.fh
            .call_method1("write", (PyBytes::new(self.fh.py(), buf),))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn ends_of(ends: &PyReadonlyArray1<'_, u64>) -> PyResult<Vec<usize>> {
    Ok(ends.as_slice()?.iter().map(|&e| e as usize).collect())
}

/// Counts of every order 1..=order of padded documents of token ids; mergeable.
#[pyclass(module = "textsieve._core", name = "TokenCounts")]
pub struct PyTokenCounts {
    inner: Counts,
}

#[pymethods]
impl PyTokenCounts {
    #[new]
    fn new(
        #[pyo3(from_py_with = arg::order)] order: usize,
        vocab_size: u32,
        pad: Named<Padding>,
    ) -> PyResult<Self> {
        Ok(PyTokenCounts {
            inner: Counts::new(Shape::new(order, vocab_size, pad.0)?),
        })
    }

    #[getter]
    fn order(&self) -> usize {
        self.inner.shape.order
    }

    #[getter]
    fn vocab_size(&self) -> u32 {
        self.inner.shape.vocab
    }

    /// The padding in effect ("none" for an order-1 model asked to pad both ends).
    #[getter]
    fn pad(&self) -> &'static str {
        self.inner.shape.padding.name()
    }

    /// Counts the documents of `ids` (`ends[i]`: one past the i-th document's last id).
    #[pyo3(signature = (ids, ends, *, num_threads=None))]
    fn add(
        &mut self,
        py: Python<'_>,
        ids: PyReadonlyArray1<'_, u32>,
        ends: PyReadonlyArray1<'_, u64>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<()> {
        let ids = ids.as_slice()?;
        let ends = ends_of(&ends)?;
        let inner = &mut self.inner;
        // (the windows are sorted into the counts when they are next read)
        Ok(py.detach(|| with_threads(num_threads, || inner.add_pending(ids, &ends)))??)
    }

    fn merge(&mut self, other: &Bound<'_, PyTokenCounts>) -> PyResult<()> {
        let other = other.borrow();
        Ok(self.inner.merge(&other.inner)?)
    }

    fn copy(&mut self) -> Self {
        self.inner.flush();
        PyTokenCounts {
            inner: self.inner.clone(),
        }
    }

    fn total(&mut self, k: usize) -> u64 {
        if k == 1 {
            // (known without sorting the pending windows: a fit that checks it flushes nothing)
            return self.inner.unigram_total();
        }
        self.inner.flush();
        self.inner.total(k)
    }

    fn distinct(&mut self, k: usize) -> usize {
        self.inner.flush();
        self.inner.distinct(k)
    }

    fn count(&mut self, gram: Vec<u32>) -> u64 {
        self.inner.flush();
        self.inner.count(&gram)
    }

    /// `(ids (m, k) uint32, counts (m,) uint64)` of the k-grams, in lexicographic order.
    fn entries<'py>(
        &mut self,
        py: Python<'py>,
        k: usize,
    ) -> PyResult<Arrays<'py, PyArray2<u32>, PyArray1<u64>>> {
        self.inner.flush();
        if k < 1 || k > self.inner.shape.order {
            return Err(super::errors::invalid_argument(
                "k",
                format!("must be between 1 and {}, got {k}", self.inner.shape.order),
            ));
        }
        let (ids, counts) = self.inner.entries(k);
        let arr = ids.into_pyarray(py).reshape([counts.len(), k])?;
        Ok((arr, counts.into_pyarray(py)))
    }

    fn set_entries(
        &mut self,
        k: usize,
        ids: PyReadonlyArray1<'_, u32>,
        counts: PyReadonlyArray1<'_, u64>,
    ) -> PyResult<()> {
        self.inner.flush();
        Ok(self
            .inner
            .set_entries(k, ids.as_slice()?, counts.as_slice()?)?)
    }

    fn first_seen<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.inner.first_seen().to_vec().into_pyarray(py)
    }

    fn set_first_seen(&mut self, ids: PyReadonlyArray1<'_, u32>) -> PyResult<()> {
        Ok(self.inner.set_first_seen(ids.as_slice()?)?)
    }
}

/// An estimated n-gram model (or one read from an ARPA file).
#[pyclass(module = "textsieve._core", name = "SmoothedModel", frozen)]
pub struct PySmoothedModel {
    inner: Model,
}

type ArpaParts = (PySmoothedModel, Vec<String>, u32);
type KnParts = (Vec<(f64, f64, f64)>, Vec<bool>);

/// A `Write` that sends what it is given, piece by piece, to another thread.
struct Pieces(std::sync::mpsc::SyncSender<Vec<u8>>);

impl std::io::Write for Pieces {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .send(buf.to_vec())
            .map_err(|_| std::io::Error::other("the ARPA file's writer stopped"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[pymethods]
impl PySmoothedModel {
    /// Estimates a model from counts; `param` is `k`, `discount` or `alpha` (NaN: default; for
    /// "kneser-ney", NaN means modified Kneser-Ney with discounts from the counts).
    #[staticmethod]
    #[pyo3(signature = (counts, smoothing, param=f64::NAN, *, num_threads=None))]
    fn estimate(
        py: Python<'_>,
        counts: &Bound<'_, PyTokenCounts>,
        smoothing: &str,
        param: f64,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<Self> {
        let smoothing = Smoothing::parse(smoothing, param)?;
        let mut counts = counts.borrow_mut();
        let c = &mut counts.inner;
        let inner = py.detach(|| {
            with_threads(num_threads, || {
                c.flush();
                Model::estimate(c, smoothing)
            })
        })??;
        Ok(PySmoothedModel { inner })
    }

    /// `(model, words, unk id)` of an ARPA file.
    #[staticmethod]
    fn read_arpa(py: Python<'_>, path: std::path::PathBuf) -> PyResult<ArpaParts> {
        use crate::reader::{open_as, Compression};
        let source = path.display().to_string();
        let a = py.detach(|| {
            let io = |e| crate::error::Error::from_io(&path, e);
            let file = open_as(&path, Compression::sniff(&path).map_err(io)?).map_err(io)?;
            arpa::read(file, &source)
        })?;
        Ok((PySmoothedModel { inner: a.model }, a.words, a.unk))
    }

    /// The same from the bytes of an ARPA file.
    #[staticmethod]
    fn read_arpa_bytes(py: Python<'_>, data: &[u8], source: &str) -> PyResult<ArpaParts> {
        let a = py.detach(|| arpa::read(data, source))?;
        Ok((PySmoothedModel { inner: a.model }, a.words, a.unk))
    }

    /// Writes the model as an ARPA file to `fh`, a binary file object (`write(bytes)`).
    #[pyo3(signature = (fh, words, unk=None))]
    fn write_arpa(
        &self,
        fh: &Bound<'_, PyAny>,
        words: &Bound<'_, PyAny>,
        unk: Option<u32>,
    ) -> PyResult<()> {
        let words = ArpaWords::from_py(words)?;
        let mut out = BufWriter::with_capacity(1 << 20, PyFile { fh: fh.clone() });
        arpa::write(&self.inner, words.get(), unk, &mut out)?;
        std::io::Write::flush(&mut out)?;
        Ok(())
    }

    /// Estimates modified Kneser-Ney from `counts` and writes it as an ARPA file to `fh` (a
    /// binary file object) one order at a time, never holding the whole model: the same file as
    /// `estimate(counts, "kneser-ney").write_arpa(...)`. Returns the discounts and fallbacks.
    #[staticmethod]
    #[pyo3(signature = (counts, fh, words, unk=None, *, num_threads=None))]
    fn write_kneser_ney_arpa(
        py: Python<'_>,
        counts: &Bound<'_, PyTokenCounts>,
        fh: &Bound<'_, PyAny>,
        words: &Bound<'_, PyAny>,
        unk: Option<u32>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<KnParts> {
        let words = ArpaWords::from_py(words)?;
        let mut counts = counts.borrow_mut();
        let c = &mut counts.inner;
        // the estimation runs on its own thread without the GIL; its text comes back here in
        // pieces, written with the GIL through `fh`
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let fh: Py<PyAny> = fh.clone().unbind();
        let mut failed: Option<PyErr> = None;
        let estimated = py.detach(|| {
            std::thread::scope(|scope| {
                let worker = scope.spawn(move || {
                    with_threads(num_threads, move || {
                        c.flush();
                        let mut out = BufWriter::with_capacity(1 << 20, Pieces(tx));
                        let d = arpa::write_modified_kneser_ney(c, words.get(), unk, &mut out)?;
                        std::io::Write::flush(&mut out)
                            .map_err(|e| crate::error::Error::invalid("fh", e.to_string()))?;
                        Ok::<_, crate::error::Error>(d)
                    })
                });
                while let Ok(piece) = rx.recv() {
                    let written = Python::attach(|py| {
                        fh.bind(py)
                            .call_method1("write", (PyBytes::new(py, &piece),))
                            .map(drop)
                    });
                    if let Err(e) = written {
                        failed = Some(e);
                        break;
                    }
                }
                drop(rx);
                worker.join()
            })
        });
        if let Some(e) = failed {
            return Err(e);
        }
        let (discounts, fallback) = match estimated {
            Ok(r) => r??,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        Ok((
            discounts.iter().map(|d| (d[0], d[1], d[2])).collect(),
            fallback,
        ))
    }

    #[pyo3(signature = (words, unk=None))]
    fn arpa_bytes<'py>(
        &self,
        py: Python<'py>,
        words: &Bound<'py, PyAny>,
        unk: Option<u32>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let words = ArpaWords::from_py(words)?;
        let mut out = Vec::new();
        py.detach(|| arpa::write(&self.inner, words.get(), unk, &mut out))?;
        Ok(PyBytes::new(py, &out))
    }

    #[getter]
    fn order(&self) -> usize {
        self.inner.order()
    }

    #[getter]
    fn vocab_size(&self) -> u32 {
        self.inner.shape.vocab
    }

    #[getter]
    fn pad(&self) -> &'static str {
        self.inner.shape.padding.name()
    }

    #[getter]
    fn is_backoff(&self) -> bool {
        self.inner.is_backoff()
    }

    /// Modified Kneser-Ney: `(D1, D2, D3+)` per order (empty otherwise).
    #[getter]
    fn discounts(&self) -> Vec<(f64, f64, f64)> {
        self.inner
            .discounts
            .iter()
            .map(|d| (d[0], d[1], d[2]))
            .collect()
    }

    /// Modified Kneser-Ney: per order, whether KenLM's fallback discounts were used.
    #[getter]
    fn fallback(&self) -> Vec<bool> {
        self.inner.fallback.clone()
    }

    /// `ln P(token | context)`, with the last `order - 1` ids of `context` (fewer if shorter).
    fn log_prob(&self, context: Vec<u32>, token: u32) -> f64 {
        self.inner.log_prob(&context, token)
    }

    /// Per-document `(nll sums, predicted token counts)`.
    #[pyo3(signature = (ids, ends, *, num_threads=None))]
    fn score<'py>(
        &self,
        py: Python<'py>,
        ids: PyReadonlyArray1<'py, u32>,
        ends: PyReadonlyArray1<'py, u64>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<Arrays<'py, PyArray1<f64>, PyArray1<u64>>> {
        let ids = ids.as_slice()?;
        let ends = ends_of(&ends)?;
        let scores = py.detach(|| with_threads(num_threads, || self.inner.score(ids, &ends)))??;
        let nll: Vec<f64> = scores.iter().map(|s| s.nll).collect();
        let n: Vec<u64> = scores.iter().map(|s| s.n).collect();
        Ok((nll.into_pyarray(py), n.into_pyarray(py)))
    }

    fn token_log_probs<'py>(
        &self,
        py: Python<'py>,
        ids: PyReadonlyArray1<'py, u32>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Ok(self
            .inner
            .token_log_probs(ids.as_slice()?)?
            .into_pyarray(py))
    }

    #[pyo3(signature = (start, length, temperature, seed, exclude=None))]
    fn sample(
        &self,
        start: Vec<u32>,
        #[pyo3(from_py_with = arg::length)] length: usize,
        temperature: f64,
        #[pyo3(from_py_with = arg::seed)] seed: u64,
        exclude: Option<u32>,
    ) -> PyResult<Vec<u32>> {
        Ok(self
            .inner
            .sample(&start, length, temperature, seed, exclude)?)
    }
}

/// The distinct words of documents, gathered chunk by chunk into one string and a table (no
/// Python str a word), then numbered as a [`PyWordIndex`].
#[pyclass(module = "textsieve._core", name = "WordSet")]
pub struct PyWordSet {
    inner: WordIndex,
}

#[pymethods]
impl PyWordSet {
    #[new]
    fn new() -> Self {
        PyWordSet {
            inner: WordIndex::new::<&str>(&[], None).expect("an empty vocabulary is valid"),
        }
    }

    /// Adds the tokens of documents (each a str, split into words, or a sequence of str
    /// tokens), except `<s>` and `</s>`.
    fn update(&mut self, docs: &Bound<'_, PyAny>) -> PyResult<()> {
        let set = &mut self.inner;
        let mut add = |t: &str| -> PyResult<()> {
            if t != "<s>" && t != "</s>" {
                set.insert(t)?;
            }
            Ok(())
        };
        for (i, doc) in docs.try_iter()?.enumerate() {
            let doc = doc?;
            if let Ok(text) = doc.cast::<PyString>() {
                for w in text
                    .to_str()?
                    .split(crate::tokenize::is_py_space)
                    .filter(|w| !w.is_empty())
                {
                    add(w)?;
                }
                continue;
            }
            each_token(&doc, "documents", i, &mut add)?;
        }
        Ok(())
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// The words in code point order as a vocabulary, `unk` (if given) first with id 0.
    #[pyo3(signature = (unk=None))]
    fn index(&self, unk: Option<&str>) -> PyResult<PyWordIndex> {
        Ok(PyWordIndex {
            inner: self.inner.sorted(unk)?,
        })
    }
}

/// A word vocabulary: words of texts (split on white space) or token lists to ids.
#[pyclass(module = "textsieve._core", name = "WordIndex", frozen)]
pub struct PyWordIndex {
    inner: WordIndex,
}

#[pymethods]
impl PyWordIndex {
    #[new]
    #[pyo3(signature = (words, unk=None))]
    fn new(
        #[pyo3(from_py_with = arg::tokens)] words: Vec<String>,
        unk: Option<u32>,
    ) -> PyResult<Self> {
        Ok(PyWordIndex {
            inner: WordIndex::new(&words, unk)?,
        })
    }

    /// The id unknown words take, or None (they are an error).
    #[getter]
    fn unk(&self) -> Option<u32> {
        self.inner.unk()
    }

    /// The id of `word`, or None where it is not in the vocabulary (`<unk>` is not taken).
    fn index(&self, word: &str) -> Option<u32> {
        self.inner.get(word)
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// The words, in id order (a list made when asked: the index holds them in one string); with
    /// `ids`, the words of those ids.
    #[pyo3(signature = (ids=None))]
    fn words(&self, ids: Option<Vec<u32>>) -> PyResult<Vec<&str>> {
        let n = self.inner.len();
        match ids {
            None => Ok((0..n as u32).map(|i| self.inner.word(i)).collect()),
            Some(ids) => ids
                .into_iter()
                .map(|i| {
                    if (i as usize) < n {
                        Ok(self.inner.word(i))
                    } else {
                        Err(crate::error::Error::invalid(
                            "ids",
                            format!("{i} is not an id of this vocabulary of {n} words"),
                        )
                        .into())
                    }
                })
                .collect(),
        }
    }

    /// `(ids uint32, ends uint64)` of texts split into words, in parallel.
    #[pyo3(signature = (texts, *, num_threads=None))]
    fn encode_texts<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<Arrays<'py, PyArray1<u32>, PyArray1<u64>>> {
        let texts = extract_texts(texts, "documents", Surrogates::Strict)?;
        let (ids, ends) =
            py.detach(|| with_threads(num_threads, || self.inner.encode_texts(&texts)))??;
        let ends: Vec<u64> = ends.into_iter().map(|e| e as u64).collect();
        Ok((ids.into_pyarray(py), ends.into_pyarray(py)))
    }

    /// The distinct tokens of documents (each a str, split into words, or a sequence of str
    /// tokens), in code point order, without `<s>` and `</s>`.
    #[staticmethod]
    fn distinct(docs: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        let mut set = PyWordSet::new();
        set.update(docs)?;
        let mut words: Vec<String> = (0..set.inner.len() as u32)
            .map(|i| set.inner.word(i).to_owned())
            .collect();
        words.sort_unstable();
        Ok(words)
    }

    /// `(ids uint32, ends uint64)` of documents that are each a str (split into words) or a
    /// sequence of str tokens; `arg` names them in errors. A list of str only is encoded with
    /// the GIL released (in parallel).
    #[pyo3(signature = (docs, arg="documents", *, num_threads=None))]
    fn encode_documents<'py>(
        &self,
        py: Python<'py>,
        docs: &Bound<'py, PyList>,
        arg: &str,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<Arrays<'py, PyArray1<u32>, PyArray1<u64>>> {
        if docs.iter().all(|d| d.is_instance_of::<PyString>()) {
            let texts = extract_texts(docs.as_any(), arg, Surrogates::Strict)?;
            let (ids, ends) =
                py.detach(|| with_threads(num_threads, || self.inner.encode_texts(&texts)))??;
            let ends: Vec<u64> = ends.into_iter().map(|e| e as u64).collect();
            return Ok((ids.into_pyarray(py), ends.into_pyarray(py)));
        }
        let mut ids: Vec<u32> = Vec::new();
        let mut ends: Vec<u64> = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            if let Ok(text) = doc.cast::<PyString>() {
                self.inner.encode_into(text.to_str()?, &mut ids)?;
            } else {
                if doc.is_instance_of::<PyUntypedArray>() {
                    return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                        "{arg}[{i}]: an array of ids, but this model is over str tokens"
                    )));
                }
                each_token(&doc, arg, i, |t| {
                    Ok(self.inner.encode_tokens(&[t], &mut ids)?)
                })?;
            }
            ends.push(ids.len() as u64);
        }
        Ok((ids.into_pyarray(py), ends.into_pyarray(py)))
    }

    /// The ids of one list of tokens.
    fn encode_tokens<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::tokens)] tokens: Vec<String>,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let mut out = Vec::with_capacity(tokens.len());
        self.inner.encode_tokens(&tokens, &mut out)?;
        Ok(out.into_pyarray(py))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTokenCounts>()?;
    m.add_class::<PySmoothedModel>()?;
    m.add_class::<PyWordIndex>()?;
    m.add_class::<PyWordSet>()?;
    Ok(())
}

/// Calls `f` with each token of `doc`, document `i` of `arg` when it is not a str: a sequence
/// of str tokens, or a `TypeError` naming the document (or the token) that is not.
fn each_token(
    doc: &Bound<'_, PyAny>,
    arg: &str,
    i: usize,
    mut f: impl FnMut(&str) -> PyResult<()>,
) -> PyResult<()> {
    let items = doc.try_iter().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "{arg}[{i}]: expected a str or a sequence of str tokens"
        ))
    })?;
    for (j, t) in items.enumerate() {
        let t = t?;
        let t = t.cast::<PyString>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!("{arg}[{i}][{j}]: expected a str token"))
        })?;
        f(t.to_str()?)?;
    }
    Ok(())
}
