//! `/`: totals over every topic, an hour of completions and dead-letters
//! per minute, live workers, and the Redis server's memory and eviction
//! policy.

use axum::extract::Query;
use axum::response::Response;
use maud::{html, Markup};
use rmq::broker::{ServerInfo, Throughput, TopicStats, THROUGHPUT_MINUTES};

use super::{all_topics, per_topic};
use crate::chart;
use crate::format;
use crate::layout::{error_banner, page, respond, Ctx, Nav, Part};
use crate::state::Shared;

struct Overview {
    stats: Vec<TopicStats>,
    throughput: Vec<Throughput>,
    workers: usize,
    servers: Vec<ServerInfo>,
    left_out: Vec<String>,
}

async fn load(state: &Shared) -> Result<Overview, String> {
    let broker = state.broker()?;
    let topics = all_topics(broker).await?;
    let (stats, mut left_out) = per_topic(&topics, |t| broker.stats(t)).await?;
    let (throughput, more) =
        per_topic(&topics, |t| broker.throughput(t, THROUGHPUT_MINUTES)).await?;
    left_out.extend(more);
    // One line per reason, though both reads of a topic may fail alike.
    left_out.sort();
    left_out.dedup();
    let workers = broker.workers().await.map_err(|e| e.to_string())?.len();
    let servers = broker.server_info().await.map_err(|e| e.to_string())?;
    Ok(Overview {
        stats,
        throughput,
        workers,
        servers,
        left_out,
    })
}

pub(crate) async fn show(ctx: Ctx, Query(part): Query<Part>) -> Response {
    let (body, failed) = match load(&ctx.state).await {
        Ok(data) => (render(&ctx, &data), false),
        Err(error) => (error_banner(&error), true),
    };
    if part.live() {
        return respond(body, failed);
    }
    let live = format!("{}?part=live", ctx.href("/"));
    let content = html! {
        div #overview hx-get=(live) hx-trigger="every 2s" hx-swap="innerHTML" {
            (body)
        }
    };
    respond(page(&ctx, Nav::Overview, "Overview", content), failed)
}

fn render(ctx: &Ctx, data: &Overview) -> Markup {
    let total = |f: fn(&TopicStats) -> u64| data.stats.iter().map(f).sum::<u64>();
    let pending = total(|s| s.pending.iter().sum());
    let dead = total(|s| s.dead);
    let parse_errors = total(|s| s.parse_errors);
    let completed = chart::sum(
        data.throughput.iter().map(|t| t.completed.as_slice()),
        THROUGHPUT_MINUTES,
    );
    let died = chart::sum(
        data.throughput.iter().map(|t| t.dead.as_slice()),
        THROUGHPUT_MINUTES,
    );
    html! {
        @for problem in &data.left_out {
            p.banner.warn { (problem) }
        }
        @for server in data.servers.iter().filter(|s| s.evicts_jobs()) {
            p.banner.warn role="alert" {
                "Redis " (server.node) " may evict keys under memory pressure (maxmemory-policy "
                code { (server.eviction_policy) } "): queued jobs can vanish without a trace. Set "
                code { "maxmemory-policy noeviction" } "."
            }
        }
        section.cards aria-label="Totals over all topics" {
            (card("Pending", pending, false))
            (card("Delayed", total(|s| s.delayed), false))
            (card("Processing", total(|s| s.processing), false))
            (card("Dead", dead, dead > 0))
            (card("Parse errors", parse_errors, parse_errors > 0))
            (card("Completed", total(|s| s.completed), false))
            (card("Failed attempts", total(|s| s.failed), false))
            a.card href=(ctx.href("/workers")) {
                span.label { "Workers alive" }
                span.value #workers-alive { (data.workers) }
            }
        }
        div.panels {
            section.panel {
                h2 { "Last hour" }
                (chart::bars("Completed per minute", &completed, "bar-done", "completed"))
                (chart::bars("Dead-lettered per minute", &died, "bar-dead", "dead-lettered"))
            }
            section.panel {
                h2 { "Redis" }
                @for server in &data.servers {
                    dl.facts {
                        dt { "Server" } dd { (server.node) }
                        dt { "Version" } dd { (server.version) }
                        dt { "Used memory" } dd { (format::bytes(server.used_memory)) }
                        dt { "Max memory" } dd {
                            @if server.maxmemory == 0 { "no limit" } @else { (format::bytes(server.maxmemory)) }
                        }
                        dt { "Eviction policy" } dd {
                            (server.eviction_policy)
                            @if server.evicts_jobs() { " (evicts jobs!)" }
                        }
                    }
                }
                p.muted { (data.stats.len()) " topic(s)" }
            }
        }
    }
}

fn card(label: &str, value: u64, bad: bool) -> Markup {
    html! {
        div.card.bad[bad] {
            span.label { (label) }
            span.value { (value) }
        }
    }
}
