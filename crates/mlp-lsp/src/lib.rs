//! `mlp lsp`: a language server for `.mlp` files over stdio, synchronous (rust-analyzer's
//! `lsp-server`). It checks pipelines with the same planner as `mlp check`
//! (`mlp_plan::load`, with the editor's unsaved texts laid over the files), so the editor
//! shows the CLI's diagnostics, codes and help; and answers hover, definition, references,
//! rename, completion, formatting, outline, folding and semantic tokens from the same
//! syntax trees.
//!
//! Positions are UTF-16 columns, as the protocol wants (`text::LineIndex`).

use std::error::Error;
use std::path::PathBuf;

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidChangeWatchedFiles, DidCloseTextDocument, DidOpenTextDocument,
    DidSaveTextDocument, Notification as _, PublishDiagnostics,
};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, FoldingRangeRequest, Formatting, GotoDefinition,
    HoverRequest, PrepareRenameRequest, References, Rename, Request as _,
    SemanticTokensFullRequest,
};
use lsp_types::{
    CompletionOptions, HoverProviderCapability, InitializeParams, OneOf, PublishDiagnosticsParams,
    RenameOptions, SemanticTokensFullOptions, SemanticTokensOptions,
    SemanticTokensServerCapabilities, ServerCapabilities, ServerInfo, TextDocumentSyncCapability,
    TextDocumentSyncKind,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

mod complete;
mod hover;
pub mod locate;
mod nav;
mod outline;
pub mod text;
pub mod uri;
pub mod world;

use world::{World, canonical};

pub type BoxError = Box<dyn Error + Send + Sync>;

/// Serve on stdin/stdout until the client says `exit`.
pub fn run_stdio() -> Result<(), BoxError> {
    let (conn, threads) = Connection::stdio();
    serve(&conn)?;
    drop(conn);
    threads.join()?;
    Ok(())
}

/// What the server can do, as told to the client.
pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        rename_provider: Some(OneOf::Right(RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: Default::default(),
        })),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), "{".into(), "\"".into(), "/".into()]),
            ..Default::default()
        }),
        document_formatting_provider: Some(OneOf::Left(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        folding_range_provider: Some(lsp_types::FoldingRangeProviderCapability::Simple(true)),
        semantic_tokens_provider: Some(SemanticTokensServerCapabilities::SemanticTokensOptions(
            SemanticTokensOptions {
                legend: outline::legend(),
                full: Some(SemanticTokensFullOptions::Bool(true)),
                range: None,
                work_done_progress_options: Default::default(),
            },
        )),
        ..Default::default()
    }
}

/// Initialize, then answer until `shutdown` and `exit`.
pub fn serve(conn: &Connection) -> Result<(), BoxError> {
    let caps = serde_json::to_value(capabilities())?;
    let init = serde_json::json!({
        "capabilities": caps,
        "serverInfo": ServerInfo { name: "mlp".into(), version: Some(env!("CARGO_PKG_VERSION").into()) },
    });
    let (id, params) = conn.initialize_start()?;
    let _: InitializeParams = serde_json::from_value(params).unwrap_or_default();
    conn.initialize_finish(id, init)?;
    let mut s = Server {
        conn,
        world: World::default(),
        dirty: Vec::new(),
    };
    loop {
        // Edits are applied as they come, and checked once no message waits: a burst of
        // keystrokes costs one check, of the last text.
        let msg = if s.dirty.is_empty() {
            match conn.receiver.recv() {
                Ok(m) => m,
                Err(_) => return Ok(()),
            }
        } else {
            match conn.receiver.try_recv() {
                Ok(m) => m,
                Err(e) if e.is_empty() => {
                    s.flush()?;
                    continue;
                }
                Err(_) => return Ok(()),
            }
        };
        match msg {
            Message::Request(req) => {
                if conn.handle_shutdown(&req)? {
                    return Ok(());
                }
                s.flush()?;
                let resp = s.request(req);
                conn.sender.send(Message::Response(resp))?;
            }
            Message::Notification(n) => s.notification(n)?,
            Message::Response(_) => {}
        }
    }
}

struct Server<'c> {
    conn: &'c Connection,
    world: World,
    /// Files changed since the last check.
    dirty: Vec<PathBuf>,
}

fn answer<P: DeserializeOwned, R: Serialize>(req: Request, f: impl FnOnce(P) -> R) -> Response {
    match serde_json::from_value::<P>(req.params) {
        Ok(p) => Response::new_ok(req.id, f(p)),
        Err(e) => Response::new_err(req.id, ErrorCode::InvalidParams as i32, e.to_string()),
    }
}

impl Server<'_> {
    fn request(&mut self, req: Request) -> Response {
        let w = &self.world;
        match req.method.as_str() {
            HoverRequest::METHOD => answer(req, |p| hover::hover(w, p)),
            GotoDefinition::METHOD => answer(req, |p| nav::definition(w, p)),
            References::METHOD => answer(req, |p| nav::references(w, p)),
            PrepareRenameRequest::METHOD => answer(req, |p| nav::prepare_rename(w, p)),
            Rename::METHOD => {
                let id = req.id.clone();
                match serde_json::from_value(req.params) {
                    Ok(p) => match nav::rename(w, p) {
                        Ok(edit) => Response::new_ok(id, edit),
                        Err(m) => Response::new_err(id, ErrorCode::InvalidRequest as i32, m),
                    },
                    Err(e) => Response::new_err(id, ErrorCode::InvalidParams as i32, e.to_string()),
                }
            }
            Completion::METHOD => answer(req, |p| complete::completion(w, p)),
            Formatting::METHOD => answer(req, |p| outline::format(w, p)),
            DocumentSymbolRequest::METHOD => answer(req, |p| outline::symbols(w, p)),
            FoldingRangeRequest::METHOD => answer(req, |p| outline::folding(w, p)),
            SemanticTokensFullRequest::METHOD => answer(req, |p| outline::tokens(w, p)),
            _ => Response::new_err(
                req.id,
                ErrorCode::MethodNotFound as i32,
                format!("mlp lsp does not answer `{}`", req.method),
            ),
        }
    }

    fn notification(&mut self, n: Notification) -> Result<(), BoxError> {
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let p: lsp_types::DidOpenTextDocumentParams = serde_json::from_value(n.params)?;
                if let Some(path) = uri::to_path(&p.text_document.uri) {
                    let path = canonical(&path);
                    self.world
                        .open(path.clone(), p.text_document.text, p.text_document.version);
                    self.dirty.push(path);
                }
            }
            DidChangeTextDocument::METHOD => {
                let p: lsp_types::DidChangeTextDocumentParams = serde_json::from_value(n.params)?;
                // Full sync: the last change holds the whole text.
                if let (Some(path), Some(c)) = (
                    uri::to_path(&p.text_document.uri),
                    p.content_changes.into_iter().last(),
                ) {
                    let path = canonical(&path);
                    self.world
                        .open(path.clone(), c.text, p.text_document.version);
                    self.dirty.push(path);
                }
            }
            DidSaveTextDocument::METHOD => {
                let p: lsp_types::DidSaveTextDocumentParams = serde_json::from_value(n.params)?;
                if let Some(path) = uri::to_path(&p.text_document.uri) {
                    self.dirty.push(canonical(&path));
                }
            }
            DidCloseTextDocument::METHOD => {
                let p: lsp_types::DidCloseTextDocumentParams = serde_json::from_value(n.params)?;
                if let Some(path) = uri::to_path(&p.text_document.uri) {
                    let path = canonical(&path);
                    self.world.close(&path);
                    self.dirty.push(path);
                }
            }
            DidChangeWatchedFiles::METHOD => {
                let p: lsp_types::DidChangeWatchedFilesParams = serde_json::from_value(n.params)?;
                for c in p.changes {
                    if let Some(path) = uri::to_path(&c.uri) {
                        self.dirty.push(canonical(&path));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Check every pipeline that reads a changed file (once each), and publish the
    /// diagnostics of every file those checks read.
    fn flush(&mut self) -> Result<(), BoxError> {
        let mut roots: Vec<PathBuf> = Vec::new();
        for path in std::mem::take(&mut self.dirty) {
            for r in self.world.roots_of(&path) {
                if !roots.contains(&r) {
                    roots.push(r);
                }
            }
        }
        let mut touched: Vec<PathBuf> = Vec::new();
        for root in roots {
            touched.extend(self.world.check(&root));
        }
        touched.sort();
        touched.dedup();
        for f in touched {
            let params = PublishDiagnosticsParams {
                uri: uri::from_path(&f),
                diagnostics: self.world.diagnostics_of(&f),
                version: self.world.docs.get(&f).map(|d| d.version),
            };
            let n = Notification::new(PublishDiagnostics::METHOD.into(), params);
            self.conn.sender.send(Message::Notification(n))?;
        }
        Ok(())
    }
}
