// The platform model of risklab (PlatformRiskModel: capacity, prevalence, channels,
// repeat offenders, audits, planted listings) written in Stan, for the peer benchmark.
//
// Same priors and likelihood as the PyMC model, and the same free variables: the logit
// detection level and the log detected level of each category, the log detected rate of each
// cell and the log channel ratios partially centred with the same per-element choice (0/1 masks
// read by the runner from the built PyMC model), non-centred trends and review efficiencies;
// the channel ratios' spread over categories is fixed (data).
// Binomial likelihoods
// are written on the same sufficient statistics as kernels y log p + (n - y) log(1 - p), with
// counts as reals, so that cells of more than 2^31 listings fit (binomial constants dropped).
// Cells without audits or planted listings carry zero counts and add exactly nothing.
//
// Only vectors, matrices and integer scalars are used, so the file compiles with Stan 2.21
// (Debian's r-cran-rstan) and with current CmdStan alike.
data {
  int<lower=1> K;                        // categories
  int<lower=1> T;                        // periods
  int<lower=0> C2;                       // secondary channels (notices, flaggers, authorities)
  int<lower=0> KP;                       // categories with purposive test purchases
  matrix<lower=0>[K, T] listings;
  matrix<lower=0>[K, T] intensity;       // review hours per 1000 listings (floored at 1e-6)
  vector[T] position;                    // period index scaled to [-1/2, 1/2]
  matrix<lower=0>[K, T] detected_pro;    // proactive detections
  matrix<lower=0>[C2 * K, T] detected_sec;  // row (c - 1) K + k: channel c, category k
  matrix<lower=0, upper=1>[K, T] cell_centred;  // 1: log detected rate sampled centred
  vector<lower=0, upper=1>[K] level_centred;    // 1: category level sampled centred
  vector<lower=0, upper=1>[K] detection_centred;  // 1: logit detection level centred
  matrix<lower=0, upper=1>[C2, K] channel_centred;  // 1: log channel ratio centred
  real<lower=0> channel_ratio_spread;    // fixed spread of a channel's log ratio over categories
  matrix<lower=0>[K, T] audit_n;         // random audits (0 where none)
  matrix<lower=0>[K, T] audit_y;
  matrix<lower=0>[K, T] purposive_n;     // purposive test purchases (0 where none)
  matrix<lower=0>[K, T] purposive_y;
  matrix<lower=0, upper=1>[K, KP] purposive_map;  // category -> its uplift
  matrix<lower=0>[K, T] planted_n;       // planted listings (0 where none)
  matrix<lower=0>[K, T] planted_y;
  // Repeat offenders (has_offenders = 0: no trader table, sizes zero).
  int<lower=0, upper=1> has_offenders;
  int<lower=0> R;                        // rows of the trader table with traders
  vector[R] strikes;                     // strike counts of those rows
  vector[R] unsuspended;
  int<lower=0> NC;                       // rows with suspensions (right-censored)
  vector[NC] censored_suspended;
  int<lower=0> X;                        // censor limit C + 1: pmf evaluated on 0..C
  matrix[NC, X] below;                   // below[j, x + 1] = 1 when x < strikes of row j
  real n_detected_traders;
  int<lower=0> past_threshold;
  int<lower=0> suspended_past_threshold;
  int<lower=1> threshold;
  real claimed_enforcement;
  // Priors: (mu, sigma) of normals, (sigma) of half-normals, (alpha, beta) of gamma and beta.
  vector[2] p_detection_level_logit_mu;
  real p_detection_level_logit_sd;
  vector[2] p_efficiency_log_mu;
  real p_efficiency_log_sd;
  vector[2] p_prevalence_intercept;
  real p_prevalence_category_sd;
  vector[2] p_prevalence_trend_mu;
  real p_prevalence_trend_sd;
  real p_prevalence_cell_sd;
  vector[2] p_channel_log_ratio_mu;
  real p_purposive_uplift;
  vector[2] p_offender_log_mean_strikes;
  vector[2] p_offender_log_dispersion;
  vector[2] p_enforcement;
}
transformed data {
  vector[K] mean_intensity;
  real n_cell_centred = sum(cell_centred);
  real n_level_centred = sum(level_centred);
  real n_detection_centred = sum(detection_centred);
  vector[X] xs;
  for (k in 1:K) mean_intensity[k] = mean(intensity[k]);
  for (x in 1:X) xs[x] = x - 1;
}
parameters {
  real detection_level_logit_mu;
  real<lower=0> detection_level_logit_sd;
  vector[K] detection_free;              // logit detection level (centred) or its offset
  real efficiency_log_mu;
  real<lower=0> efficiency_log_sd;
  vector[K] efficiency_log_offset;       // log review efficiency per category, non-centred
  real prevalence_intercept;
  real<lower=0> prevalence_category_sd;
  real prevalence_trend_mu;
  real<lower=0> prevalence_trend_sd;
  real<lower=0> prevalence_cell_sd;
  vector[K] level_free;                  // log detected level (centred) or its offset
  vector[K] prevalence_trend_offset;
  matrix[K, T] cell_free;                // log detected rate (centred) or its offset
  vector[C2] channel_log_ratio_mu;
  matrix[C2, K] channel_free;            // log channel ratio (centred) or its offset
  vector<lower=0>[KP] purposive_uplift;
  vector[has_offenders] offender_log_mean_strikes;
  vector[has_offenders] offender_log_dispersion;
  vector<lower=0, upper=1>[has_offenders] enforcement;
}
transformed parameters {
  // Saved by Stan with every draw; the runner keeps only what the benchmark reads (pars=).
  vector[K] detection_level_logit;
  matrix[K, T] detection_rate;
  matrix[K, T] log_d;
  vector[K] level_mu;                    // mean of the category level (log detected level)
  matrix[K, T] cell_mu;                  // mean of the cell's log detected rate
  matrix[K, T] logit_pi;
  detection_level_logit = detection_centred .* detection_free
      + (1 - detection_centred) .* (detection_level_logit_mu
                                    + detection_level_logit_sd * detection_free);
  {
    vector[K] efficiency = exp(efficiency_log_mu + efficiency_log_sd * efficiency_log_offset);
    vector[K] det_level = inv_logit(detection_level_logit);
    vector[K] saturation_at_mean = -expm1(-efficiency .* mean_intensity);
    vector[K] mean_log_d;
    vector[K] level;
    for (k in 1:K) {
      for (t in 1:T) {
        real relative = -expm1(-efficiency[k] * intensity[k, t]) / saturation_at_mean[k];
        detection_rate[k, t] = fmin(det_level[k] * relative, 1 - 1e-9);
      }
    }
    log_d = log(detection_rate);
    for (k in 1:K) mean_log_d[k] = mean(log_d[k]);
    level_mu = prevalence_intercept + mean_log_d;
    level = level_centred .* level_free
            + (1 - level_centred) .* (level_mu + prevalence_category_sd * level_free);
    cell_mu = rep_matrix(level - mean_log_d, T)
              + (prevalence_trend_mu + prevalence_trend_sd * prevalence_trend_offset) * position'
              + log_d;
    // The log detected rate omega is the free variable; logit prevalence = omega - log d.
    logit_pi = cell_centred .* cell_free
               + (1 - cell_centred) .* (cell_mu + prevalence_cell_sd * cell_free)
               - log_d;
  }
}
model {
  matrix[K, T] prevalence = inv_logit(logit_pi);
  matrix[K, T] log_pi = log(prevalence);
  vector[K] mean_d_pro;
  for (k in 1:K) mean_d_pro[k] = mean(detection_rate[k]);

  // Priors.
  detection_level_logit_mu ~ normal(p_detection_level_logit_mu[1], p_detection_level_logit_mu[2]);
  detection_level_logit_sd ~ normal(0, p_detection_level_logit_sd);
  // Partially centred: Normal(mu, sigma) where centred, Normal(0, 1) offsets elsewhere.
  target += -0.5 * dot_self(detection_centred .* (detection_free - detection_level_logit_mu)
                            / detection_level_logit_sd)
            - n_detection_centred * log(detection_level_logit_sd)
            - 0.5 * dot_self((1 - detection_centred) .* detection_free);
  efficiency_log_mu ~ normal(p_efficiency_log_mu[1], p_efficiency_log_mu[2]);
  efficiency_log_sd ~ normal(0, p_efficiency_log_sd);
  efficiency_log_offset ~ std_normal();
  prevalence_intercept ~ normal(p_prevalence_intercept[1], p_prevalence_intercept[2]);
  prevalence_category_sd ~ normal(0, p_prevalence_category_sd);
  prevalence_trend_mu ~ normal(p_prevalence_trend_mu[1], p_prevalence_trend_mu[2]);
  prevalence_trend_sd ~ normal(0, p_prevalence_trend_sd);
  prevalence_cell_sd ~ normal(0, p_prevalence_cell_sd);
  prevalence_trend_offset ~ std_normal();
  target += -0.5 * dot_self(level_centred .* (level_free - level_mu) / prevalence_category_sd)
            - n_level_centred * log(prevalence_category_sd)
            - 0.5 * dot_self((1 - level_centred) .* level_free);
  target += -0.5 * sum(cell_centred .* square((cell_free - cell_mu) / prevalence_cell_sd))
            - n_cell_centred * log(prevalence_cell_sd)
            - 0.5 * sum((1 - cell_centred) .* square(cell_free));
  channel_log_ratio_mu ~ normal(p_channel_log_ratio_mu[1], p_channel_log_ratio_mu[2]);
  target += -0.5 * sum(channel_centred
                       .* square((channel_free - rep_matrix(channel_log_ratio_mu, K))
                                 / channel_ratio_spread))
            - 0.5 * sum((1 - channel_centred) .* square(channel_free));
  purposive_uplift ~ normal(0, p_purposive_uplift);

  // Detections per channel: Binomial(listings, prevalence × rate).
  target += sum(detected_pro .* (log_pi + log_d)
                + (listings - detected_pro) .* log1m(prevalence .* detection_rate));
  for (c in 1:C2) {
    vector[K] ratio = exp(channel_centred[c]' .* channel_free[c]'
                          + (1 - channel_centred[c]')
                            .* (channel_log_ratio_mu[c] + channel_ratio_spread * channel_free[c]'));
    vector[K] rate_k = -expm1(-ratio .* mean_d_pro);
    matrix[K, T] y = block(detected_sec, (c - 1) * K + 1, 1, K, T);
    matrix[K, T] p = prevalence .* rep_matrix(rate_k, T);
    target += sum(y .* log(p) + (listings - y) .* log1m(p));
  }

  // Random audits, purposive test purchases (with uplift), planted listings.
  target += sum(audit_y .* log_pi + (audit_n - audit_y) .* log1m(prevalence));
  if (KP > 0) {
    matrix[K, T] eta = logit_pi + rep_matrix(purposive_map * purposive_uplift, T);
    target += sum(purposive_y .* log_inv_logit(eta)
                  + (purposive_n - purposive_y) .* log1m_inv_logit(eta));
  }
  target += sum(planted_y .* log_d + (planted_n - planted_y) .* log1m(detection_rate));

  // Repeat offenders: zero-truncated, right-censored negative binomial trader table.
  if (has_offenders) {
    real m = exp(offender_log_mean_strikes[1]);
    real a = exp(-offender_log_dispersion[1]);
    real log_ratio = log1p(m / a);
    real log_odds = log(m) - log(m + a);
    vector[X] log_pmf = lgamma(xs + a) - lgamma(a) - lgamma(xs + 1) - a * log_ratio
                        + xs * log_odds;
    vector[R] log_pmf_rows = lgamma(strikes + a) - lgamma(a) - lgamma(strikes + 1)
                             - a * log_ratio + strikes * log_odds;
    vector[NC] cdf_below = below * exp(log_pmf);
    offender_log_mean_strikes ~ normal(p_offender_log_mean_strikes[1],
                                       p_offender_log_mean_strikes[2]);
    offender_log_dispersion ~ normal(p_offender_log_dispersion[1], p_offender_log_dispersion[2]);
    enforcement ~ beta(p_enforcement[1], p_enforcement[2]);
    target += dot_product(unsuspended, log_pmf_rows)
              + dot_product(censored_suspended, log1m(cdf_below))
              - n_detected_traders * log1m_exp(log_pmf[1]);
    target += binomial_lpmf(suspended_past_threshold | past_threshold, enforcement[1]);
  }
}
generated quantities {
  matrix[K, T] prevalence = inv_logit(logit_pi);
  real enforcement_q = has_offenders ? enforcement[1] : not_a_number();
  real non_enforcement_share = not_a_number();
  if (has_offenders) {
    real m = exp(offender_log_mean_strikes[1]);
    real a = exp(-offender_log_dispersion[1]);
    vector[X] pmf = exp(lgamma(xs + a) - lgamma(a) - lgamma(xs + 1) - a * log1p(m / a)
                        + xs * (log(m) - log(m + a)));
    vector[X] cdf = cumulative_sum(pmf);
    real after = 1 - sum(1 - head(cdf, threshold)) / m;
    non_enforcement_share = (claimed_enforcement - enforcement[1]) * after
                            / (1 - enforcement[1] * after);
  }
}
