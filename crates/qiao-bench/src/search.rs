//! The search workload: a generated corpus (at least half Chinese) over many conversations,
//! loaded through the API; then query classes measured while messages keep arriving, with the
//! index's size on disk and the lag from an acknowledged send to its being searchable.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::{self, Api};
use crate::server::{BoxError, ChildArgs, Server};
use crate::stats::{Latency, machine};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Messages in the corpus.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: usize,
    /// Conversations they are spread over.
    #[arg(long, default_value_t = 200)]
    pub conversations: usize,
    /// Senders (members of every conversation).
    #[arg(long, default_value_t = 50)]
    pub senders: usize,
    /// Messages per request while loading (the API's batch is one message; requests in flight).
    #[arg(long, default_value_t = 64)]
    pub load_concurrency: usize,
    /// Seconds of queries per class.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Messages per second sent while queries run.
    #[arg(long, default_value_t = 100)]
    pub background_rate: u64,
    /// Queries in flight.
    #[arg(long, default_value_t = 2)]
    pub query_concurrency: usize,
    #[arg(long, default_value = "0")]
    pub server_cpu: String,
    /// CPU the load generator is pinned to (`none`: unpinned).
    #[arg(long, default_value = "1")]
    pub client_cpu: String,
}

const ZH_WORDS: &[&str] = &[
    "会议",
    "项目",
    "上海",
    "北京",
    "深圳",
    "客户",
    "合同",
    "报告",
    "季度",
    "预算",
    "分公司",
    "市场",
    "销售",
    "技术",
    "产品",
    "设计",
    "评审",
    "周会",
    "计划",
    "审批",
    "财务",
    "数据",
    "系统",
    "上线",
    "测试",
    "需求",
    "文档",
    "方案",
    "培训",
    "招聘",
    "采购",
    "发票",
    "报销",
    "出差",
    "机票",
    "酒店",
    "进度",
    "风险",
    "问题",
    "修复",
    "版本",
    "发布",
    "服务器",
    "数据库",
    "接口",
    "性能",
    "优化",
    "用户",
    "反馈",
    "体验",
    "视频会议",
    "季度报告",
    "年终总结",
    "项目经理",
    "人力资源",
    "供应链",
    "明天",
    "今天",
    "下午",
    "上午",
    "周五",
    "月底",
    "尽快",
    "确认",
    "安排",
    "讨论",
    "同步",
    "更新",
    "提交",
    "检查",
    "通知",
    "王芳",
    "李雷",
    "韩梅梅",
    "欧阳娜娜",
    "张伟",
    "刘洋",
    "陈静",
    "杨帆",
    "赵磊",
    "孙悦",
    "桥梁",
    "工程",
    "验收",
    "质量",
];
const EN_WORDS: &[&str] = &[
    "meeting",
    "project",
    "deadline",
    "budget",
    "customer",
    "contract",
    "report",
    "quarterly",
    "review",
    "design",
    "release",
    "server",
    "database",
    "performance",
    "feedback",
    "schedule",
    "invoice",
    "travel",
    "hotel",
    "risk",
    "issue",
    "fix",
    "version",
    "deploy",
    "test",
    "requirement",
    "document",
    "proposal",
    "training",
    "hiring",
    "please",
    "confirm",
    "tomorrow",
    "today",
    "update",
    "sync",
    "check",
    "team",
    "plan",
    "launch",
    "metrics",
    "latency",
];

/// The first words of the "words typed together" class (上海的预算, …).
const TYPED_TOGETHER_FIRST: &[&str] = &["上海", "王芳", "明天", "数据库", "项目经理"];

/// A small, fast generator (the corpus is the same for every run).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Message `i` of the corpus: 55 % Chinese, 30 % English, 15 % mixed.
fn message(rng: &mut Rng, i: usize) -> String {
    let kind = rng.below(100);
    let n = 5 + rng.below(10);
    let mut s = String::new();
    for w in 0..n {
        let zh = kind < 55 || (kind >= 85 && rng.below(2) == 0);
        if zh {
            let word = ZH_WORDS[rng.below(ZH_WORDS.len())];
            s.push_str(word);
            // Particles as common as in real text: 的 in about half of the Chinese messages,
            // so a search for it scores most of the index. Never after the first word of a
            // "words typed together" query, whose whole must not occur.
            match rng.below(16) {
                _ if TYPED_TOGETHER_FIRST.contains(&word) => {}
                0 => s.push('的'),
                1 => s.push('了'),
                _ => {}
            }
            if rng.below(5) == 0 {
                s.push('，');
            }
        } else {
            if w > 0 {
                s.push(' ');
            }
            s.push_str(EN_WORDS[rng.below(EN_WORDS.len())]);
        }
    }
    s.push_str(&format!(" #{i}"));
    s
}

struct Class {
    name: &'static str,
    queries: Vec<String>,
}

fn classes(first_channel: &str) -> Vec<Class> {
    let q = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    vec![
        Class { name: "zh 1 character", queries: q(&["会", "桥", "京", "票", "修"]) },
        Class { name: "zh 2 characters", queries: q(&["会议", "项目", "上海", "预算", "王芳"]) },
        Class {
            name: "zh 3 characters", queries: q(&["分公司", "服务器", "数据库", "韩梅梅", "供应链"])
        },
        Class {
            name: "zh 4 characters", queries: q(&["视频会议", "季度报告", "年终总结", "欧阳娜娜", "人力资源"])
        },
        // Words typed together, as people type them: the whole never occurs in the corpus,
        // so every query is made twice, the second time with its words matched apart.
        Class {
            name: "zh words typed together",
            queries: q(&["上海的预算", "王芳的报销", "明天的周会", "数据库的性能", "项目经理的方案"]),
        },
        // Characters in most Chinese messages: the index's longest posting lists.
        Class { name: "zh particles", queries: q(&["的", "了", "的了", "会议的", "的 deadline"]) },
        Class { name: "en word", queries: q(&["deadline", "budget", "reports", "Latency", "hotel"]) },
        Class {
            name: "mixed",
            queries: q(&["项目 deadline", "上海 customer", "预算 review", "会议 tomorrow", "测试 release"]),
        },
        Class {
            name: "phrase",
            queries: q(&[
                "\"视频会议\"",
                "\"季度报告\"",
                "\"project deadline\"",
                "\"please confirm\"",
                "\"上线 测试\"",
            ]),
        },
        Class {
            name: "filters",
            queries: vec![
                "from:searcher1 会议".into(),
                format!("in:{first_channel} 项目"),
                "after:2020-01-01 预算".into(),
                "from:searcher2 deadline".into(),
                format!("in:{first_channel} \"季度报告\""),
            ],
        },
    ]
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() { dir_size(&path) } else { e.metadata().map(|m| m.len()).unwrap_or(0) }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn q(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub async fn run(args: Args) -> Result<(), BoxError> {
    if args.messages == 0 || args.conversations == 0 || args.senders < 3 || args.seconds == 0 || args.seconds > 600 {
        return Err("messages, conversations positive; at least 3 senders; seconds 1 to 600".into());
    }
    let dir = tempfile::tempdir()?;
    let child = ChildArgs {
        database: format!("sqlite:{}", dir.path().join("qiao.db").display()),
        data_dir: dir.path().to_owned(),
        max_batch: 512,
        read_connections: 8,
        flush_ms: 4,
        commit_gap_ms: qiao::Config::defaults().db_commit_gap_ms,
        resume_memory_mb: qiao::Config::defaults().realtime_resume_memory_mb,
        bus: String::new(),
        file_store: String::new(),
    };
    let server = Server::start(&child, args.server_cpu.parse::<usize>().ok())?;
    crate::workloads::pin_self(args.client_cpu.parse::<usize>().ok());
    eprintln!("Qiao: pid {} at {} (CPU {:?})", server.ready.pid, server.ready.url, server.pinned);
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.load_concurrency * 2).build()?;
    let owner =
        client::owner(&server.ready.url, server.ready.setup_token.as_deref().ok_or("no setup token")?, &http).await?;
    let people = client::people(&owner, "searcher", args.senders).await?;
    let ids: Vec<String> = people.iter().map(|(id, _)| id.clone()).collect();
    let mut conversations = Vec::with_capacity(args.conversations);
    for c in 0..args.conversations {
        conversations.push(client::channel(&owner, &format!("search-room-{c}"), &ids).await?);
    }
    let people: Arc<Vec<Api>> = Arc::new(people.into_iter().map(|(_, a)| a).collect());
    let conversations = Arc::new(conversations);

    // Load the corpus.
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let total = args.messages as u64;
    let mut tasks = Vec::new();
    for w in 0..args.load_concurrency {
        let (next, people, conversations) = (next.clone(), people.clone(), conversations.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, BoxError>(());
                }
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
                let body = message(&mut rng, i as usize);
                let sender = &people[(i as usize + w) % people.len()];
                let conv = &conversations[rng.below(conversations.len())];
                sender
                    .post_ok(
                        &format!("/api/v1/conversations/{conv}/messages"),
                        json!({"body": body, "client_key": format!("c{i}")}),
                    )
                    .await?;
                if i > 0 && i % 100_000 == 0 {
                    eprintln!("  {i} of {total} messages loaded ({:.0}/s)", i as f64 / started.elapsed().as_secs_f64());
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let load_secs = started.elapsed().as_secs_f64();
    eprintln!("  {total} messages loaded in {load_secs:.0} s ({:.0}/s)", total as f64 / load_secs);

    // Wait for the index to hold everything: search for the last message's marker.
    let searcher = people[0].clone();
    let marker = format!("#{}", total - 1);
    let caught_up = Instant::now();
    loop {
        let v = searcher.get_ok(&format!("/api/v1/search?q={}&limit=1", q(&format!("\"{marker}\"")))).await;
        if v.as_ref().is_ok_and(|v| v["total"].as_u64().unwrap_or(0) >= 1)
            || caught_up.elapsed() > Duration::from_secs(600)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("  index caught up {:.1} s after the last acknowledged send", caught_up.elapsed().as_secs_f64());
    let index_bytes = dir_size(&dir.path().join("search"));
    let db_bytes = std::fs::metadata(dir.path().join("qiao.db")).map(|m| m.len()).unwrap_or(0);

    // Background traffic while querying.
    let stop = Arc::new(AtomicBool::new(false));
    let background = {
        let (stop, people, conversations) = (stop.clone(), people.clone(), conversations.clone());
        let rate = args.background_rate.max(1);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
            let mut i = total;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let mut rng = Rng(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
                let body = message(&mut rng, i as usize);
                let (p, c) =
                    (people[i as usize % people.len()].clone(), conversations[rng.below(conversations.len())].clone());
                tokio::spawn(async move {
                    let _ = p.post_ok(&format!("/api/v1/conversations/{c}/messages"), json!({ "body": body })).await;
                });
                i += 1;
            }
        })
    };

    // The classes are interleaved query by query, so whatever the server does in the
    // background (merging the freshly loaded index, checkpoints) falls on all of them alike.
    let classes = classes("search-room-0");
    let per_class: Arc<Vec<std::sync::Mutex<(Latency, u64)>>> =
        Arc::new(classes.iter().map(|_| std::sync::Mutex::new((Latency::new(), 0))).collect());
    let queries: Arc<Vec<(usize, String)>> = Arc::new({
        let longest = classes.iter().map(|c| c.queries.len()).max().unwrap_or(0);
        (0..longest)
            .flat_map(|i| {
                classes.iter().enumerate().map(move |(c, class)| (c, class.queries[i % class.queries.len()].clone()))
            })
            .collect()
    });
    let cpu_before = server.cpu_seconds();
    let query_started = Instant::now();
    let end = Instant::now() + Duration::from_secs(args.seconds * classes.len() as u64);
    let mut workers = Vec::new();
    for w in 0..args.query_concurrency {
        let (per_class, searcher, queries) = (per_class.clone(), people[w % people.len()].clone(), queries.clone());
        workers.push(tokio::spawn(async move {
            let mut k = w * 7;
            while Instant::now() < end {
                let (class, query) = &queries[k % queries.len()];
                k += 1;
                let t = Instant::now();
                let v = searcher.get_ok(&format!("/api/v1/search?q={}&limit=20", q(query))).await?;
                let mut slot = per_class[*class].lock().unwrap();
                slot.0.record(t.elapsed());
                slot.1 += v["total"].as_u64().unwrap_or(0);
            }
            Ok::<_, BoxError>(())
        }));
    }
    for w in workers {
        w.await??;
    }
    let rows: Vec<_> = classes
        .iter()
        .zip(per_class.iter())
        .map(|(class, slot)| {
            let (l, hits) = &*slot.lock().unwrap();
            let n = l.count().max(1);
            (class.name, n, l.ms(0.5), l.ms(0.99), hits / n)
        })
        .collect();
    let query_secs = query_started.elapsed().as_secs_f64();
    let query_cpu = server.cpu_seconds() - cpu_before;

    // Ingest lag: from an acknowledged send to the first search that finds it.
    let mut lag = Latency::new();
    for k in 0..20 {
        let token = format!("lagprobe{k}x{}", total);
        let t = Instant::now();
        people[1]
            .post_ok(
                &format!("/api/v1/conversations/{}/messages", conversations[k % conversations.len()]),
                json!({"body": format!("探针 {token}")}),
            )
            .await?;
        loop {
            let v = searcher.get_ok(&format!("/api/v1/search?q={token}&limit=1")).await?;
            if v["total"].as_u64().unwrap_or(0) >= 1 {
                break;
            }
            if t.elapsed() > Duration::from_secs(30) {
                return Err(format!("{token} was not searchable after 30 s").into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        lag.record(t.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let _ = background.await;
    let (_, rss_peak) = server.rss_kib();
    server.stop()?;

    println!();
    println!(
        "search on Qiao ({}): {} messages (55 % Chinese, 30 % English, 15 % mixed) in {} conversations; \
         the searcher is in all of them; {} msg/s arriving meanwhile; {} queries in flight",
        machine(),
        total,
        args.conversations,
        args.background_rate,
        args.query_concurrency
    );
    println!(
        "  loaded in {load_secs:.0} s ({:.0} msg/s); index {:.0} MiB on disk (database {:.0} MiB); server RSS peak {:.0} MiB",
        total as f64 / load_secs,
        index_bytes as f64 / (1 << 20) as f64,
        db_bytes as f64 / (1 << 20) as f64,
        rss_peak as f64 / 1024.0
    );
    println!("| query class | queries | p50 ms | p99 ms | matches per query (mean) |");
    println!("|---|---|---|---|---|");
    for (name, n, p50, p99, mean) in &rows {
        println!("| {name} | {n} | {p50:.2} | {p99:.2} | {mean} |");
    }
    let all: u64 = rows.iter().map(|r| r.1).sum();
    println!(
        "  server CPU during queries: {:.2} ms per query ({:.0} % of a core, background sends included)",
        query_cpu * 1000.0 / all.max(1) as f64,
        query_cpu * 100.0 / query_secs
    );
    println!(
        "  ingest lag (acknowledged send → searchable): p50 {:.0} ms, p99 {:.0} ms over 20 probes",
        lag.ms(0.5),
        lag.ms(0.99)
    );
    Ok(())
}
