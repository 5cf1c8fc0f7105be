//! `seed`: subscriptions written straight into the server's database, in
//! large transactions ([`Store::import`]), sealed with the server's own
//! key and spread over its tenants and providers. Each provider's
//! subscriptions are built from one template, translated once through the
//! provider's adapter (`plan`), so every row has the native record a real
//! create of that kind would have left, and reads back like one.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use switchboard::Config;
use switchboard_core::capabilities::AccountRule;
use switchboard_core::{
    CallbackAuth, CallbackUrl, EventCatalog, EventName, OnUnsupported, Secret, SpecDraft,
    SubscriptionSpec, SubscriptionStatus, Transport,
};
use switchboard_engine::ProviderInstance;
use switchboard_store::{NativeRecord, Store, StoreOptions, SubscriptionRecord};

/// Records per [`Store::import`] call (one transaction each).
const BATCH: usize = 20_000;

/// One provider's subscription, translated once.
#[derive(Clone)]
struct Template {
    spec: SubscriptionSpec,
    warnings: Vec<String>,
    natives: Vec<NativeRecord>,
}

/// Writes subscriptions for the tenants and providers of one server config.
pub struct Seeder {
    store: Store,
    templates: Arc<Vec<Template>>,
    /// Tenants in round-robin order, each repeated by its weight.
    tenants: Arc<Vec<String>>,
    /// Subscriptions written so far (numbers the callback URLs).
    written: u64,
}

/// What one [`Seeder::seed`] call wrote.
pub struct Seeded {
    /// Ids written for the first tenant, oldest first.
    pub first_tenant_ids: Vec<String>,
    /// Subscriptions written.
    pub count: u64,
    /// How long it took.
    pub elapsed: Duration,
}

impl Seeder {
    /// Opens the database of the config at `config_path` (running its
    /// migrations) with its keys. `tenants` are `(tenant, weight)`; empty
    /// means each configured token's tenant once. `providers` empty means
    /// every configured provider. `start_at` continues the numbering of
    /// an earlier seed of the same database (callback URLs stay unique).
    pub async fn open(
        config_path: &Path,
        tenants: &[(String, u32)],
        providers: &[String],
        start_at: u64,
    ) -> Result<Self, String> {
        let config = Config::load(Some(config_path))?;
        let cipher = switchboard::app::cipher(&config).map_err(|e| e.to_string())?;
        let mut opts = StoreOptions::new(config.database.url.clone(), cipher);
        opts.pg_schema = config.database.schema.clone();
        opts.max_connections = 2;
        let store = Store::connect(&opts)
            .await
            .map_err(|e| format!("database.url: {e}"))?;
        let templates = templates(&config, providers)?;
        Ok(Self {
            store,
            templates: Arc::new(templates),
            tenants: Arc::new(tenant_cycle(&config, tenants)?),
            written: start_at,
        })
    }

    /// Writes `count` more subscriptions. The next batch is built on a
    /// blocking thread while the current one is written.
    pub async fn seed(&mut self, count: u64) -> Result<Seeded, String> {
        let started = Instant::now();
        let first = self.tenants[0].clone();
        let mut first_tenant_ids = Vec::new();
        let end = self.written + count;
        let mut next = self.spawn_batch(self.written, end);
        while let Some(pending) = next {
            let (records, upto) = pending.await.map_err(|e| e.to_string())??;
            next = self.spawn_batch(upto, end);
            self.store
                .import(&records)
                .await
                .map_err(|e| format!("import: {e}"))?;
            let mine = records.into_iter().filter(|r| r.tenant == first);
            first_tenant_ids.extend(mine.map(|r| r.id));
            self.written = upto;
        }
        Ok(Seeded {
            first_tenant_ids,
            count,
            elapsed: started.elapsed(),
        })
    }

    /// Builds records `from..min(from + BATCH, end)` in the background;
    /// `None` once `from` reached `end`.
    #[allow(clippy::type_complexity)]
    fn spawn_batch(
        &self,
        from: u64,
        end: u64,
    ) -> Option<tokio::task::JoinHandle<Result<(Vec<SubscriptionRecord>, u64), String>>> {
        if from >= end {
            return None;
        }
        let upto = end.min(from + BATCH as u64);
        let templates = self.templates.clone();
        let tenants = self.tenants.clone();
        Some(tokio::task::spawn_blocking(move || {
            let records = (from..upto)
                .map(|n| record(&templates, &tenants, n))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((records, upto))
        }))
    }

    /// Closes the pools.
    pub async fn close(self) {
        drop(self.store);
    }
}

/// Subscription number `n`: its tenant and provider by round robin, a
/// callback URL of its own, fresh native ids.
fn record(
    templates: &[Template],
    tenants: &[String],
    n: u64,
) -> Result<SubscriptionRecord, String> {
    let t = &templates[(n % templates.len() as u64) as usize];
    let tenant = &tenants[((n / templates.len() as u64) % tenants.len() as u64) as usize];
    let id = switchboard_core::ids::subscription_id();
    let url = CallbackUrl::parse(&format!("https://hooks.bench.example.com/{tenant}/{n}"))?;
    let spec = t
        .spec
        .clone()
        .with(|d| d.url = url)
        .map_err(|e| e.to_string())?;
    let now = Utc::now();
    let natives = t
        .natives
        .iter()
        .map(|native| NativeRecord {
            native_id: format!("bench-{}-{}", &id[4..], native.key),
            created_at: now,
            ..native.clone()
        })
        .collect();
    Ok(SubscriptionRecord {
        id,
        tenant: tenant.clone(),
        key: None,
        status: SubscriptionStatus::Active,
        spec,
        warnings: t.warnings.clone(),
        last_error: None,
        version: 1,
        created_at: now,
        updated_at: now,
        natives,
        last_reconciled_at: None,
        findings: Vec::new(),
    })
}

/// `(tenant, weight)` pairs expanded into a round-robin cycle.
fn tenant_cycle(config: &Config, tenants: &[(String, u32)]) -> Result<Vec<String>, String> {
    let mut cycle = Vec::new();
    if tenants.is_empty() {
        for t in &config.auth.tokens {
            if !cycle.contains(&t.tenant) {
                cycle.push(t.tenant.clone());
            }
        }
    } else {
        for (tenant, weight) in tenants {
            cycle.extend(std::iter::repeat_n(tenant.clone(), *weight as usize));
        }
    }
    if cycle.is_empty() {
        return Err("seed: no tenant (configure [[auth.tokens]] or pass --tenants)".into());
    }
    Ok(cycle)
}

/// One template per provider (all configured ones when `only` is empty).
fn templates(config: &Config, only: &[String]) -> Result<Vec<Template>, String> {
    let text = std::fs::read_to_string(&config.events.file)
        .map_err(|e| format!("events.file {}: {e}", config.events.file.display()))?;
    let catalog = EventCatalog::from_toml(&text).map_err(|e| format!("events.file: {e}"))?;
    // Translation is pure; the transport is never used.
    let transport: Arc<dyn Transport> = Arc::new(
        switchboard_transport::HttpTransport::new(Default::default(), Default::default())
            .map_err(|e| e.to_string())?,
    );
    let mut out = Vec::new();
    for (key, provider) in &config.providers {
        if !only.is_empty() && !only.contains(key) {
            continue;
        }
        let instance = switchboard::providers::build(key, provider, transport.clone())?;
        let account = config
            .simulators
            .accounts
            .get(&provider.kind)
            .and_then(|a| a.first())
            .cloned();
        out.push(template(&instance, account, &catalog)?);
    }
    if out.is_empty() {
        return Err("seed: no provider to seed (check --providers)".into());
    }
    Ok(out)
}

/// A realistic subscription for `instance`: a name, bearer auth, a
/// signing secret, a header and metadata, each dropped where the kind
/// cannot take it (as `on_unsupported: ignore` does on create); one event,
/// the first catalog event the kind offers.
fn template(
    instance: &ProviderInstance,
    account: Option<String>,
    catalog: &EventCatalog,
) -> Result<Template, String> {
    let adapter = &instance.adapter;
    let kind = adapter.kind();
    let event = catalog
        .events
        .iter()
        .find(|(_, e)| e.native.contains_key(kind))
        .map(|(name, _)| name.clone())
        .ok_or_else(|| format!("events.file: no event for kind {kind}"))?;
    let mut draft = SpecDraft {
        provider: instance.key.clone(),
        account: account
            .filter(|_| matches!(adapter.capabilities().account, AccountRule::Required { .. })),
        name: Some("bench subscription".into()),
        url: CallbackUrl::parse("https://hooks.bench.example.com/template")?,
        events: vec![EventName::parse(&event)?],
        auth: CallbackAuth::Bearer {
            token: Secret::new("bench-callback-token-0123456789"),
        },
        signing_secret: Some(Secret::new("whsec_bench_0123456789abcdefghijklmnopqrstuv")),
        headers: [("X-Team".to_owned(), "bench".to_owned())].into(),
        method: None,
        format: None,
        timeout_seconds: None,
        max_retries: None,
        enabled: true,
        filters: Vec::new(),
        provider_options: Default::default(),
        metadata: serde_json::json!({"team": "bench", "cost_center": "4711"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        on_unsupported: OnUnsupported::Ignore,
        delivery: Default::default(),
    };
    let warnings = adapter
        .capabilities()
        .check(&instance.key, kind, &mut draft)
        .map_err(|e| format!("providers.{}: {e}", instance.key))?;
    let events = catalog
        .resolve(kind, &instance.key, &draft.events)
        .map_err(|e| format!("providers.{}: {e:?}", instance.key))?;
    let spec = draft.validate().map_err(|e| e.to_string())?;
    let plans = adapter
        .plan("sub_TEMPLATE", &spec, &events)
        .map_err(|e| format!("providers.{}: {e}", instance.key))?;
    let now = Utc::now();
    let natives = plans
        .into_iter()
        .map(|p| NativeRecord {
            key: p.key,
            native_id: String::new(),
            events: p.events,
            enabled: true,
            created_at: now,
        })
        .collect();
    Ok(Template {
        spec,
        warnings,
        natives,
    })
}
