# Compile and sample benchmarks/stan/platform.stan with rstan; called by benchmarks/stan/runner.py.
#
#   Rscript run_rstan.R MODEL.stan DATA.R OUTDIR CHAINS DRAWS TUNE SEED ADAPT_DELTA CORES [CACHE]
#
# With a CACHE directory the compiled model is saved there as <md5 of the Stan file>.rds and
# loaded on later runs (compile_s is then the load time; cached=TRUE in timing.txt).
# Writes OUTDIR/draws.csv (chain, draw and the saved quantities, one row per draw) and
# OUTDIR/timing.txt (key=value lines: compile_s, sampling_s, divergences, treedepth hits,
# leapfrog steps, rstan and Stan versions).
args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 9) stop("usage: run_rstan.R MODEL DATA OUTDIR CHAINS DRAWS TUNE SEED ADAPT CORES [CACHE]")
model_file <- args[1]
data_file <- args[2]
out_dir <- args[3]
chains <- as.integer(args[4])
draws <- as.integer(args[5])
tune <- as.integer(args[6])
seed <- as.integer(args[7])
adapt_delta <- as.numeric(args[8])
cores <- as.integer(args[9])
cache_dir <- if (length(args) >= 10) args[10] else ""

suppressPackageStartupMessages(library(rstan))
data <- read_rdump(data_file)

# Debian's r-cran-bh ships no headers inside the R package (they are libboost-dev's, in
# /usr/include): point rstan at them when its own lookup finds nothing.
boost <- rstan_options("boost_lib")
if (!nzchar(boost) || !file.exists(boost)) {
  if (dir.exists("/usr/include/boost")) rstan_options(boost_lib = "/usr/include")
}

t0 <- Sys.time()
cached <- FALSE
cache_file <- ""
if (nzchar(cache_dir)) {
  dir.create(cache_dir, showWarnings = FALSE, recursive = TRUE)
  cache_file <- file.path(cache_dir, paste0(unname(tools::md5sum(model_file)), ".rds"))
}
if (nzchar(cache_file) && file.exists(cache_file)) {
  model <- readRDS(cache_file)
  cached <- TRUE
} else {
  model <- stan_model(file = model_file, model_name = "risklab_platform", auto_write = FALSE)
  if (nzchar(cache_file)) saveRDS(model, cache_file)
}
compile_s <- as.numeric(difftime(Sys.time(), t0, units = "secs"))

keep <- c("prevalence", "detection_rate", "enforcement_q", "non_enforcement_share")
t1 <- Sys.time()
fit <- sampling(
  model, data = data, chains = chains, iter = tune + draws, warmup = tune, seed = seed,
  cores = cores, refresh = 0, pars = keep, include = TRUE,
  control = list(adapt_delta = adapt_delta, max_treedepth = 10)
)
sampling_s <- as.numeric(difftime(Sys.time(), t1, units = "secs"))
if (fit@mode != 0L) stop("rstan sampling failed (see the messages above)")

arr <- as.array(fit)  # iterations x chains x parameters
dims <- dim(arr)
rows <- vector("list", dims[2])
for (ch in seq_len(dims[2])) {
  block <- arr[, ch, , drop = TRUE]
  if (is.null(dim(block))) block <- matrix(block, nrow = dims[1])
  rows[[ch]] <- data.frame(chain = ch - 1L, draw = seq_len(dims[1]) - 1L, block,
                           check.names = FALSE)
}
write.csv(do.call(rbind, rows), file.path(out_dir, "draws.csv"), row.names = FALSE)

sampler <- get_sampler_params(fit, inc_warmup = FALSE)
divergences <- sum(sapply(sampler, function(x) sum(x[, "divergent__"])))
treedepth_hits <- sum(sapply(sampler, function(x) sum(x[, "treedepth__"] >= 10)))
leapfrog <- sum(sapply(sampler, function(x) sum(x[, "n_leapfrog__"])))
elapsed <- get_elapsed_time(fit)
lines <- c(
  sprintf("compile_s=%.3f", compile_s),
  sprintf("sampling_s=%.3f", sampling_s),
  sprintf("chain_warmup_s=%.3f", sum(elapsed[, "warmup"])),
  sprintf("chain_sample_s=%.3f", sum(elapsed[, "sample"])),
  sprintf("divergences=%d", as.integer(divergences)),
  sprintf("treedepth_hits=%d", as.integer(treedepth_hits)),
  sprintf("leapfrog_steps=%d", as.integer(leapfrog)),
  sprintf("cached=%s", cached),
  sprintf("rstan=%s", as.character(packageVersion("rstan"))),
  sprintf("stan=%s", stan_version())
)
writeLines(lines, file.path(out_dir, "timing.txt"))
