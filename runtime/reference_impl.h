/* The reference arithmetic, included by reference.c once per compute type with
 *   REAL      the compute type (double or float)
 *   REAL_EPS  its machine epsilon (the block norms' eps)
 *   FN(name)  the precision-suffixed name of a function
 * tgmath.h makes exp, sqrt, ... follow REAL, so every operation rounds in the compute
 * type as the original model's does. Vectors are REAL arrays; weights stay fp32. */

/* An element of the mLSTM memory or Mamba2's SSM state as kept: with precision.state bf16
 * each update is rounded to the nearest bf16 (directly from REAL, as the GPU's cvt.rn.bf16
 * from fp32) and read as rounded. RetNet's retention stays as computed (README, Accuracy). */
static inline REAL FN(keep)(int bf16, REAL x) { return bf16 ? (REAL)bf16_nearest(x) : x; }

/* y [out] = W [out, in] x [in] (+ b) */
static void FN(linear)(const linear_t *l, const REAL *x, REAL *y)
{
    for (int o = 0; o < l->out; o++) {
        const float *w = l->w + (size_t)o * l->in;
        REAL acc = 0;
        for (int i = 0; i < l->in; i++) acc += (REAL)w[i] * x[i];
        y[o] = l->b ? acc + (REAL)l->b[o] : acc;
    }
}

/* y [nb*bs] = blockdiag(W [nb, bs, bs]) x (+ b) */
static void FN(block_linear)(const block_linear_t *l, const REAL *x, REAL *y)
{
    for (int n = 0; n < l->nb; n++)
        for (int k = 0; k < l->bs; k++) {
            const float *w = l->w + ((size_t)n * l->bs + k) * l->bs;
            const REAL *xn = x + (size_t)n * l->bs;
            REAL acc = 0;
            for (int h = 0; h < l->bs; h++) acc += (REAL)w[h] * xn[h];
            const int o = n * l->bs + k;
            y[o] = l->b ? acc + (REAL)l->b[o] : acc;
        }
}

/* Causal conv over time, one step: window = [state[c, 0..K-2], x[c]] (oldest first);
 * the state keeps the newest K-1 entries. state [ch, K-1] */
static void FN(causal_conv)(const conv_t *cv, REAL *state, const REAL *x, REAL *y)
{
    const int K1 = cv->k - 1;
    for (int c = 0; c < cv->ch; c++) {
        REAL *st = state + (size_t)c * K1;
        const float *w = cv->w + (size_t)c * cv->k;
        REAL acc = (REAL)cv->b[c];
        for (int j = 0; j < K1; j++) acc += (REAL)w[j] * st[j];
        acc += (REAL)w[K1] * x[c];
        for (int j = 0; j + 1 < K1; j++) st[j] = st[j + 1];
        st[K1 - 1] = x[c];
        y[c] = acc;
    }
}

static REAL FN(sigmoid)(REAL x) { return 1 / (1 + exp(-x)); }
static REAL FN(silu)(REAL x) { return x * FN(sigmoid)(x); }
static REAL FN(softplus)(REAL x) { return x > 20 ? x : log1p(exp(x)); }
static REAL FN(logsigmoid)(REAL x) { return -FN(softplus)(-x); }
static REAL FN(gelu)(REAL x) { return (REAL)0.5 * x * (1 + erf(x / sqrt((REAL)2))); }

/* y = x / sqrt(mean(x^2) + eps) * w   (w may be NULL: no weight) */
static void FN(rmsnorm)(const REAL *x, const float *w, REAL eps, int n, REAL *y)
{
    REAL ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    const REAL r = 1 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) y[i] = w ? x[i] * r * (REAL)w[i] : x[i] * r;
}

/* Normalise each of `groups` contiguous groups of x [n] by its mean and biased variance
 * (eps 1e-5), then * w (+ b). LayerNorm is one group without bias. */
static void FN(group_norm)(const REAL *x, int n, int groups, const float *w, const float *b,
                           REAL *y)
{
    const int g = n / groups;
    for (int k = 0; k < groups; k++) {
        const REAL *xg = x + (size_t)k * g;
        REAL mean = 0, var = 0;
        for (int i = 0; i < g; i++) mean += xg[i];
        mean /= g;
        for (int i = 0; i < g; i++) var += (xg[i] - mean) * (xg[i] - mean);
        var /= g;
        const REAL r = 1 / sqrt(var + (REAL)1e-5);
        for (int i = 0; i < g; i++) {
            const int c = k * g + i;
            y[c] = (xg[i] - mean) * r * (REAL)w[c] + (b ? (REAL)b[c] : 0);
        }
    }
}

/* sLSTM block: returns GroupNorm(h) + t.  Scratch: 7 * H. */
static void FN(slstm_block)(const ref_model_t *m, const slstm_w *w, REAL *st, const REAL *t,
                            REAL *y, REAL *scr)
{
    const int H = m->s.hidden_size, NS = m->s.xlstm.slstm_num_heads;
    const int K1 = m->s.xlstm.conv_kernel - 1;
    REAL *conv = st, *hprev = conv + (size_t)H * K1, *c = hprev + H, *nrm = c + H, *mx = nrm + H;
    REAL *xn = scr, *xc = xn + H, *g[4] = {xc + H, xc + 2 * H, xc + 3 * H, xc + 4 * H},
         *tmp = xc + 5 * H;

    FN(group_norm)(t, H, 1, w->norm, NULL, xn);
    FN(causal_conv)(&w->conv, conv, xn, xc);
    for (int i = 0; i < H; i++) xc[i] = FN(silu)(xc[i]);
    for (int k = 0; k < 4; k++) { /* i, f read xc; z, o read xn */
        FN(block_linear)(&w->gate_in[k], k < 2 ? xc : xn, g[k]);
        FN(block_linear)(&w->gate_state[k], hprev, tmp);
        for (int i = 0; i < H; i++) g[k][i] += tmp[i];
    }
    for (int i = 0; i < H; i++) {
        const REAL lf = mx[i] + FN(logsigmoid)(g[1][i]);
        const REAL mnew = fmax(g[0][i], lf);
        const REAL ig = exp(g[0][i] - mnew), fg = exp(lf - mnew);
        c[i] = fg * c[i] + ig * tanh(g[2][i]);
        nrm[i] = fg * nrm[i] + ig;
        mx[i] = mnew;
        hprev[i] = FN(sigmoid)(g[3][i]) * c[i] / (nrm[i] + (REAL)1e-6);
    }
    FN(group_norm)(hprev, H, NS, w->gn_w, w->gn_b, y);
    for (int i = 0; i < H; i++) y[i] += t[i];
}

/* mLSTM block: returns proj_down((GroupNorm(h) + skip * xc) * silu(xg)) + t.
 * Scratch: 10 * E. */
static void FN(mlstm_block)(const ref_model_t *m, const mlstm_w *w, REAL *st, const REAL *t,
                            REAL *y, REAL *scr)
{
    const int H = m->s.hidden_size, E = m->s.d.mlstm_inner, NH = m->s.xlstm.mlstm_num_heads;
    const int DM = m->s.d.mlstm_head, K1 = m->s.xlstm.conv_kernel - 1;
    REAL *conv = st, *C = conv + (size_t)E * K1, *nv = C + (size_t)NH * DM * DM,
         *mx = nv + (size_t)NH * DM;
    REAL *xn = scr, *xm = xn + H, *xg = xm + E, *xc = xg + E, *qkv = xc + E, *h = qkv + 3 * E,
         *hn = h + E, *gates = hn + E;
    REAL *q = qkv, *k = qkv + E, *v = qkv + 2 * E;

    FN(group_norm)(t, H, 1, w->norm, NULL, xn);
    FN(linear)(&w->x_proj, xn, xm);
    FN(linear)(&w->gate_proj, xn, xg);
    FN(causal_conv)(&w->conv, conv, xm, xc);
    for (int i = 0; i < E; i++) xc[i] = FN(silu)(xc[i]);
    FN(block_linear)(&w->q, xc, q);
    FN(block_linear)(&w->k, xc, k);
    FN(block_linear)(&w->v, xm, v);
    REAL *ip = gates, *fp = gates + NH;
    FN(linear)(&w->igate, qkv, ip);
    FN(linear)(&w->fgate, qkv, fp);

    const REAL kscale = sqrt((REAL)DM);
    const int bf16 = m->s.precision.state == PRECISION_BF16;
    for (int n = 0; n < NH; n++) {
        const REAL lf = FN(logsigmoid)(fp[n]);
        const REAL mnew = fmax(ip[n], mx[n] + lf);
        const REAL ig = exp(ip[n] - mnew), fg = exp(lf + mx[n] - mnew);
        REAL *Cn = C + (size_t)n * DM * DM, *nvn = nv + (size_t)n * DM;
        const REAL *qn = q + (size_t)n * DM, *kn = k + (size_t)n * DM, *vn = v + (size_t)n * DM;
        REAL *hn_ = h + (size_t)n * DM;
        for (int b = 0; b < DM; b++) hn_[b] = 0;
        REAL qdotn = 0;
        for (int a = 0; a < DM; a++) {
            const REAL kk = kn[a] / kscale;
            REAL *Ca = Cn + (size_t)a * DM;
            for (int b = 0; b < DM; b++) {
                Ca[b] = FN(keep)(bf16, fg * Ca[b] + ig * kk * vn[b]);
                hn_[b] += qn[a] * Ca[b];
            }
            nvn[a] = fg * nvn[a] + ig * kk;
            qdotn += qn[a] * nvn[a];
        }
        const REAL denom = fmax(fabs(qdotn), exp(-mnew)) + (REAL)1e-6;
        for (int b = 0; b < DM; b++) hn_[b] /= denom;
        mx[n] = mnew;
    }
    FN(group_norm)(h, E, NH, w->outnorm_w, w->outnorm_b, hn);
    for (int i = 0; i < E; i++) hn[i] = (hn[i] + (REAL)w->skip[i] * xc[i]) * FN(silu)(xg[i]);
    FN(linear)(&w->proj_down, hn, y);
    for (int i = 0; i < H; i++) y[i] += t[i];
}

/* xLSTM layer = LayerNorm(mLSTM(sLSTM(t))). Scratch: 2 H + max(7 H, 10 E). */
static void FN(xlstm_layer)(const ref_model_t *m, const block_w *b, REAL *st, const REAL *t,
                            REAL *y, REAL *scr)
{
    const spec_t *s = &m->s;
    const int H = s->hidden_size, K1 = s->xlstm.conv_kernel - 1;
    const xlstm_w *w = &b->layer.x;
    REAL *s_out = scr, *m_out = scr + H;
    FN(slstm_block)(m, &w->s, st, t, s_out, scr + 2 * H);
    FN(mlstm_block)(m, &w->m, st + (size_t)H * K1 + 4 * H, s_out, m_out, scr + 2 * H);
    FN(group_norm)(m_out, H, 1, w->final_norm, NULL, y);
}

/* Mamba2 layer. Scratch: 3 E + 2 S + NM. */
static void FN(mamba2_layer)(const ref_model_t *m, const block_w *b, REAL *st, const REAL *t,
                             REAL *y, REAL *scr)
{
    const spec_t *s = &m->s;
    const mamba2_w *w = &b->layer.m;
    const int E = s->d.mamba_inner, NM = s->d.mamba_heads, HD = s->mamba2.head_size;
    const int S = s->mamba2.bc_head_size, K1 = s->mamba2.conv_kernel - 1;
    REAL *in_conv = st, *b_conv = in_conv + (size_t)E * K1, *c_conv = b_conv + (size_t)S * K1,
         *ssm = c_conv + (size_t)S * K1;
    REAL *x = scr, *z = x + E, *yy = z + E, *bv = yy + E, *cv = bv + S, *dt = cv + S;

    FN(linear)(&w->in_proj, t, x);
    FN(linear)(&w->z_proj, t, z);
    FN(linear)(&w->b_proj, t, bv);
    FN(linear)(&w->c_proj, t, cv);
    FN(linear)(&w->dt_proj, t, dt);
    FN(causal_conv)(&w->in_conv, in_conv, x, x);
    FN(causal_conv)(&w->b_conv, b_conv, bv, bv);
    FN(causal_conv)(&w->c_conv, c_conv, cv, cv);
    for (int i = 0; i < E; i++) x[i] = FN(silu)(x[i]);
    for (int i = 0; i < S; i++) bv[i] = FN(silu)(bv[i]), cv[i] = FN(silu)(cv[i]);
    const int bf16 = s->precision.state == PRECISION_BF16;
    for (int n = 0; n < NM; n++) {
        dt[n] = FN(softplus)(dt[n]);
        const REAL decay = exp((REAL)w->a[n] * dt[n]);
        for (int h = 0; h < HD; h++) {
            REAL *row = ssm + ((size_t)n * HD + h) * S;
            const REAL xh = x[n * HD + h];
            REAL acc = 0;
            for (int j = 0; j < S; j++) {
                row[j] = FN(keep)(bf16, decay * row[j] + dt[n] * bv[j] * xh);
                acc += cv[j] * row[j];
            }
            yy[n * HD + h] = acc + (REAL)w->d[n] * xh;
        }
    }
    for (int i = 0; i < E; i++) yy[i] *= FN(silu)(z[i]);
    FN(rmsnorm)(yy, w->norm, (REAL)1e-5, E, yy);
    FN(linear)(&w->out_proj, yy, y);
}

/* RetNet layer at position pos. Scratch: 5 H. */
static void FN(retnet_layer)(const ref_model_t *m, const block_w *b, REAL *st, int64_t pos,
                             const REAL *t, REAL *y, REAL *scr)
{
    const spec_t *s = &m->s;
    const retnet_w *w = &b->layer.r;
    const int H = s->hidden_size, NH = s->retnet.num_heads, D = s->d.retnet_head;
    REAL *scale = st, *R = st + NH;
    REAL *q = scr, *k = q + H, *v = k + H, *g = v + H, *o = g + H;

    FN(linear)(&w->q, t, q);
    FN(linear)(&w->k, t, k);
    FN(linear)(&w->v, t, v);
    FN(linear)(&w->g, t, g);
    const REAL kscale = pow((REAL)D, (REAL)-0.5);
    for (int i = 0; i < H; i++) k[i] *= kscale;
    /* rotate q and k in place, pair by pair: rot(x)[2j] = -x[2j+1], rot(x)[2j+1] = x[2j] */
    for (int i = 0; i < H; i += 2) {
        const int e = i % D;
        const REAL th0 = (REAL)pos * (REAL)w->angle[e], th1 = (REAL)pos * (REAL)w->angle[e + 1];
        const REAL q0 = q[i], q1 = q[i + 1], k0 = k[i], k1 = k[i + 1];
        q[i] = q0 * cos(th0) - q1 * sin(th0);
        q[i + 1] = q1 * cos(th1) + q0 * sin(th1);
        k[i] = k0 * cos(th0) - k1 * sin(th0);
        k[i + 1] = k1 * cos(th1) + k0 * sin(th1);
    }
    for (int n = 0; n < NH; n++) {
        const REAL decay = (REAL)w->decay[n];
        REAL *Rn = R + (size_t)n * D * D, *on = o + (size_t)n * D;
        const REAL *qn = q + (size_t)n * D, *kn = k + (size_t)n * D, *vn = v + (size_t)n * D;
        scale[n] = scale[n] * decay + 1;
        for (int j = 0; j < D; j++) on[j] = 0;
        for (int i = 0; i < D; i++) {
            REAL *Ri = Rn + (size_t)i * D;
            for (int j = 0; j < D; j++) {
                Ri[j] = decay * Ri[j] + kn[i] * vn[j];
                on[j] += qn[i] * Ri[j];
            }
        }
        const REAL r = sqrt(scale[n]);
        for (int j = 0; j < D; j++) on[j] /= r;
        FN(rmsnorm)(on, NULL, (REAL)1e-6, D, on);
    }
    for (int i = 0; i < H; i++) o[i] *= FN(silu)(g[i]);
    FN(linear)(&w->out, o, y);
}

/* Hawk layer (RG-LRU). Scratch: 5 H. */
static void FN(hawk_layer)(const ref_model_t *m, const block_w *b, REAL *st, const REAL *t,
                           REAL *y, REAL *scr)
{
    const spec_t *s = &m->s;
    const hawk_w *w = &b->layer.h;
    const int H = s->hidden_size, K1 = s->hawk.conv_kernel - 1;
    REAL *conv = st, *h = st + (size_t)H * K1;
    REAL *gate = scr, *x = gate + H, *ig = x + H, *rg = ig + H;
    const REAL c = (REAL)s->hawk.c;

    FN(linear)(&w->gate_proj, t, gate);
    FN(linear)(&w->rec_proj, t, x);
    FN(causal_conv)(&w->conv, conv, x, x);
    FN(block_linear)(&w->in_gate, x, ig);
    FN(block_linear)(&w->rec_gate, x, rg);
    for (int i = 0; i < H; i++) {
        const REAL at = pow((REAL)w->a[i], c * FN(sigmoid)(rg[i]));
        h[i] = h[i] * at + sqrt(1 - at * at) * (FN(sigmoid)(ig[i]) * x[i]);
        gate[i] = FN(gelu)(gate[i]) * h[i];
    }
    FN(linear)(&w->out_proj, gate, y);
}

static void FN(state_init)(const ref_model_t *m, void *state)
{
    ((state_header_t *)state)->pos = 0;
    REAL *st = (REAL *)STATE_DATA(state);
    memset(st, 0, m->state_elems * sizeof(REAL));
    /* sLSTM's stabiliser m starts at -inf so that the first forget gate is exactly 0 */
    const spec_t *s = &m->s;
    const size_t H = s->hidden_size, K1 = s->xlstm.conv_kernel - 1;
    for (int l = 0; l < s->tower_depth; l++) {
        REAL *mx = st + m->towers[TOWER_XLSTM].blocks[l].state + H * K1 + 3 * H;
        for (size_t i = 0; i < H; i++) mx[i] = -INFINITY;
    }
}

static void FN(step)(const ref_model_t *m, void *state, const float *features, double out[4])
{
    const spec_t *s = &m->s;
    const int H = s->hidden_size, P = s->proj_size, F = s->num_features;
    const REAL eps = REAL_EPS;
    state_header_t *hdr = state;
    REAL *st = (REAL *)STATE_DATA(state);
    /* u, t, layer output, MLP hidden, then the layer's own scratch */
    REAL *buf = xmalloc((3 * (size_t)H + P + F + m->scratch_elems) * sizeof(REAL));
    REAL *u = buf, *t = u + H, *y = t + H, *hid = y + H, *x = hid + P, *scr = x + F;

    for (int k = 0; k < NUM_TOWERS; k++) {
        const tower_w *tw = &m->towers[k];
        for (int i = 0; i < F; i++) x[i] = features[i];
        FN(linear)(&tw->input_up, x, hid);
        for (int i = 0; i < P; i++) hid[i] = fmax(hid[i], (REAL)0);
        FN(linear)(&tw->input_down, hid, u);
        for (int l = 0; l < s->tower_depth; l++) {
            const block_w *b = &tw->blocks[l];
            REAL *bst = st + b->state;
            FN(rmsnorm)(u, b->norm1, eps, H, t);
            switch (k) {
            case TOWER_XLSTM: FN(xlstm_layer)(m, b, bst, t, y, scr); break;
            case TOWER_MAMBA2: FN(mamba2_layer)(m, b, bst, t, y, scr); break;
            case TOWER_RETNET: FN(retnet_layer)(m, b, bst, hdr->pos, t, y, scr); break;
            default: FN(hawk_layer)(m, b, bst, t, y, scr); break;
            }
            for (int i = 0; i < H; i++) u[i] += y[i];
            FN(rmsnorm)(u, b->norm2, eps, H, t);
            FN(linear)(&b->fc1, t, hid);
            for (int i = 0; i < P; i++) hid[i] = fmax(hid[i], (REAL)0);
            FN(linear)(&b->fc2, hid, y);
            for (int i = 0; i < H; i++) u[i] += y[i];
        }
        REAL o;
        FN(linear)(&m->output_proj, u, &o);
        out[k] = (double)o;
    }
    hdr->pos++;
    free(buf);
}
