//! The synthetic leases and the queries people type: makes, models, categories and VINs from
//! small tables, drawn by a fixed-seed generator. Lease `n` of `count` is the same on every run
//! and machine (its own generator seeded by `n`), so an index built once can be reused and a
//! lease re-written unchanged.

use lessor_search::{LeaseDocument, SearchQuery};
use uuid::Uuid;

/// A make, its VIN manufacturer code, and its models with their category.
type Make = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

const CATALOGUE: &[Make] = &[
    (
        "Toyota",
        "JTD",
        &[("Corolla", "compact"), ("Camry", "midsize"), ("RAV4", "suv"), ("Prius", "economy"), ("Hilux", "truck")],
    ),
    (
        "Volkswagen",
        "WVW",
        &[("Golf", "compact"), ("Passat", "midsize"), ("Tiguan", "suv"), ("ID.4", "electric"), ("Polo", "economy")],
    ),
    (
        "BMW",
        "WBA",
        &[("3 Series", "midsize"), ("X5", "suv"), ("i4", "electric"), ("M3", "sports"), ("7 Series", "luxury")],
    ),
    (
        "Mercedes-Benz",
        "WDD",
        &[("C-Class", "midsize"), ("E-Class", "midsize"), ("GLE", "suv"), ("S-Class", "luxury"), ("Sprinter", "van")],
    ),
    ("Audi", "WAU", &[("A4", "midsize"), ("A6", "luxury"), ("Q5", "suv"), ("e-tron GT", "electric")]),
    (
        "Ford",
        "1FA",
        &[("Focus", "compact"), ("Mustang", "sports"), ("F-150", "truck"), ("Transit", "van"), ("Explorer", "suv")],
    ),
    ("Tesla", "5YJ", &[("Model 3", "electric"), ("Model Y", "electric"), ("Model S", "luxury")]),
    ("Honda", "JHM", &[("Civic", "compact"), ("Accord", "midsize"), ("CR-V", "suv"), ("Jazz", "economy")]),
    ("Hyundai", "KMH", &[("i30", "compact"), ("Tucson", "suv"), ("Ioniq 5", "electric")]),
    ("Kia", "KNA", &[("Ceed", "compact"), ("Sportage", "suv"), ("EV6", "electric"), ("Picanto", "economy")]),
    ("Porsche", "WP0", &[("911", "sports"), ("Cayenne", "suv"), ("Taycan", "electric")]),
    ("Bentley", "SCB", &[("Continental GT", "luxury"), ("Bentayga", "luxury")]),
    ("Škoda", "TMB", &[("Octavia", "compact"), ("Superb", "midsize"), ("Kodiaq", "suv")]),
    ("Renault", "VF1", &[("Clio", "economy"), ("Megane", "compact"), ("Trafic", "van")]),
    ("Peugeot", "VF3", &[("208", "economy"), ("3008", "suv"), ("Expert", "van")]),
    ("Volvo", "YV1", &[("XC60", "suv"), ("XC90", "luxury"), ("V60", "midsize")]),
    ("Nissan", "SJN", &[("Leaf", "electric"), ("Qashqai", "suv"), ("Navara", "truck")]),
    ("Land Rover", "SAL", &[("Range Rover", "luxury"), ("Defender", "suv")]),
];
const STATUSES: [(&str, u64); 4] = [("active", 60), ("completed", 25), ("draft", 10), ("terminated", 5)];
const VIN_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPRSTUVWXYZ";
const OWNERS: u64 = 5_000;
const START_MILLIS: i64 = 1_640_995_200_000; // 2022-01-01

/// SplitMix64: small, fast, and the same sequence on every machine.
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

pub fn owner(n: u64) -> Uuid {
    Uuid::from_u64_pair(0x0_1ea5e, n)
}

/// Bumped whenever [`lease`] draws differently: an index built by another generator is rebuilt.
pub const GENERATOR: u32 = 2;

/// Lease `n` of `count` (ids `0x1ea5e-n`), spread over three years in creation order.
pub fn lease(n: u64, count: u64) -> LeaseDocument {
    let rng = &mut Rng(0x5EED ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let (make, wmi, models) = rng.pick(CATALOGUE);
    let (model, category) = rng.pick(models);
    let mut vin = String::from(*wmi);
    vin.extend((0..14).map(|_| char::from(*rng.pick(VIN_CHARS))));
    let roll = rng.below(100);
    let mut cumulative = 0;
    let status = STATUSES.iter().find(|(_, weight)| {
        cumulative += weight;
        roll < cumulative
    });
    // Spread over three years, in creation order, with some jitter.
    let span = 3 * 365 * 86_400_000_i64;
    let created_at = START_MILLIS + span * n as i64 / count as i64 + rng.below(60_000) as i64;
    LeaseDocument {
        id: Uuid::from_u64_pair(0x1ea5e, n),
        owner_id: owner(rng.below(OWNERS)),
        status: status.map_or("active", |(name, _)| name).to_owned(),
        category: (*category).to_owned(),
        make: (*make).to_owned(),
        model: (*model).to_owned(),
        vin,
        year: 2018 + rng.below(8) as u16,
        start_date: format!("20{:02}-{:02}-01", 22 + rng.below(4), 1 + rng.below(12)),
        monthly_amount: 19_900 + 100 * rng.below(2_000) as i64,
        currency: "EUR".into(),
        created_at,
    }
}

/// Words people type: makes and model names of 3+ letters, lowercased.
pub fn vocabulary() -> Vec<String> {
    let mut words: Vec<String> = CATALOGUE
        .iter()
        .flat_map(|(make, _, models)| std::iter::once(*make).chain(models.iter().map(|(model, _)| *model)))
        .flat_map(|name| name.split([' ', '-', '.']).map(str::to_lowercase).collect::<Vec<_>>())
        .filter(|word| word.len() >= 3 && word.chars().all(|c| c.is_ascii_alphabetic()))
        .collect();
    words.sort();
    words.dedup();
    words
}

/// One typo: a substitution, deletion or transposition inside the word.
fn with_typo(rng: &mut Rng, word: &str) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    let at = 1 + rng.below(chars.len() as u64 - 2) as usize;
    match rng.below(3) {
        0 => chars[at] = if chars[at] == 'x' { 'y' } else { 'x' },
        1 => {
            chars.remove(at);
        }
        _ => chars.swap(at, at + 1),
    }
    chars.into_iter().collect()
}

pub const KINDS: [&str; 8] = [
    "one word",
    "typo word",
    "prefix",
    "make + model",
    "one word + owner",
    "typo word + owner",
    "prefix + owner",
    "no text + owner",
];

pub fn query(rng: &mut Rng, kind: usize, words: &[String]) -> SearchQuery {
    let long: Vec<&String> = words.iter().filter(|word| word.len() >= 5).collect();
    let text = match kind % 4 {
        0 => rng.pick(words).clone(),
        1 => {
            let word = rng.pick(&long).as_str();
            with_typo(rng, word)
        }
        2 => {
            let word = rng.pick(&long).to_string();
            word[..3 + rng.below(2) as usize].to_owned()
        }
        _ => {
            let (make, _, models) = rng.pick(CATALOGUE);
            let (model, _) = rng.pick(models);
            format!("{make} {model}")
        }
    };
    let text = if kind == 7 { String::new() } else { text };
    let owner_id = (kind >= 4).then(|| owner(rng.below(OWNERS)));
    SearchQuery { text, owner_id, limit: 20, ..SearchQuery::default() }
}
