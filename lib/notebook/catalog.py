"""What each notebook teaches and what each of its figures shows: one place for captions, the paper's
counterpart of every figure and the noise level it was drawn at.

Used by `lib.notebook.plots.save_figure` (the title line of every figure names the checkpoint, N and sigma),
by the results site (`lib.publish.site`: captions and paper counterparts) and by the README's generated blocks
(`lib.publish.readme`). A figure saved under a name that is not listed here still gets a title line and a page
entry, captioned "(no caption)"; a test keeps this table and the notebooks in agreement.

``sigma`` of a figure is either the name of a notebook parameter (read from the notebook's namespace at
save time, so SMOKE overrides show) or a fixed text.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fig:
    """One figure of a notebook: its caption, the paper's counterpart and the noise level it was drawn at."""
    caption: str
    paper: str = ""          # the paper's counterpart ("Fig. 1"); "" = ours, no counterpart
    sigma: str = ""          # a notebook parameter name (UPPER_CASE) or a literal description


@dataclass(frozen=True)
class Notebook:
    """One notebook: its title, what it teaches, the paper figures it reproduces and its figures by name."""
    title: str
    teaches: str             # one line: what a reader learns from it
    paper: str               # the paper figures it reproduces
    figures: dict
    # what it reads on a dataset without tuxphoto's background and instance labels (CIFAR-10: the class only);
    # shown on the site's pages of runs on other checkpoints (figures/<variant>/NN_*)
    factors_note: str = ""


CLASS_ONLY = "CIFAR-10 labels only the class, so "


NOTEBOOKS: dict[str, Notebook] = {
    "00_training_evidence": Notebook(
        "The readout, training-time evidence and the factor study",
        "at which noise level and in which block a representation varies across images and reads the class "
        "(the readout every later notebook uses), how the paper's effects moved during training, and which "
        "factor (normalization, data, width) changes them",
        "the readout and training-time evidence (ours)",
        {
            "readout_grid": Fig("The readout grid: for each σ and block, the fraction of the representation's "
                                "energy that varies across images, a ridge probe and kNN for the class (fitted on "
                                "a train split) and k-means AMI; trained blocks (red: phi), the untrained "
                                "network (dashed) and pixels (dotted).", sigma="READOUT_SIGMAS"),
            "training_log": Fig("Training loss and held-out denoising gain per sigma against images seen.",
                                sigma="training σ = u², u uniform in [0, 1]"),
            "evidence_curves": Fig("The paper's effects measured on snapshots of the shipped run against images "
                                   "seen (0 = the untrained network); dotted: raw pixels.",
                                   sigma="recorded during training with the earlier readout (σ = 0, probe at 50/255)"),
            "study_curves": Fig("Factor study: the same effects for seven short runs that differ from the "
                                "baseline in one factor each.",
                                sigma="recorded during training with the readout (σ = 0.2, lib.measure.readout)"),
        }),
    "01_denoising_sparsity": Notebook(
        "Denoising performance and sparsity across blocks",
        "that the blind UNet denoises, and whether its middle block turns a dense channel vector into a sparse "
        "one (participation ratio of each block's input and output, trained vs untrained)",
        "Fig. 1, Fig. 10 (section 2)",
        {
            "fig1_network": Fig("The network, drawn from the checkpoint's configuration: blocks with their "
                                "channels, convolutions and resolution; phi is the spatial mean of the middle "
                                "block's output.", "Fig. 1 (architecture)", sigma="σ-blind network"),
            "denoising_psnr": Fig("Output PSNR against input PSNR for the trained and untrained networks, next to "
                                  "the best Gaussian blur chosen with the clean image (oracle).",
                                  sigma="σ ∈ {0.05, 0.1, 0.2, 0.4, 0.8}"),
            "denoising_examples": Fig("Held-out images (rows), their noisy versions and the denoiser's outputs "
                                      "at four noise levels.", sigma="σ ∈ {0.1, 0.2, 0.4, 0.8}"),
            "fig1_participation_ratio": Fig(
                "Trained network: histograms over images of the participation ratio (1 = dense, 1/C = one "
                "channel) of each block's spatially averaged input and output; dashed: the paper's ImageNet "
                "modes.", "Fig. 1 (histograms)", sigma="SIGMA"),
            "fig1_participation_ratio_sigma0": Fig(
                "The trained network's histograms on clean images (σ = 0), as a reference: the middle block's "
                "output barely varies across images there.", "Fig. 1 (reference, ours)", sigma="σ = 0 (clean images)"),
            "fig1_participation_ratio_untrained": Fig(
                "The same histograms for the untrained network of the same architecture (control).",
                "Fig. 1 (control, ours)", sigma="SIGMA"),
            "phi_sparsity_trained": Fig("Trained network: sorted phi of four images (left) and, per image, the "
                                        "number of channels carrying 90% of phi's energy (right).",
                                        sigma="SIGMA"),
            "phi_sparsity_untrained": Fig("Untrained network (control): sorted phi and channels carrying 90% of "
                                          "its energy.", sigma="SIGMA"),
            "noise_robustness": Fig("Relative change of each block's noise-averaged spatial-mean vector as σ "
                                    "grows, trained (left) and untrained (right).",
                                    "section 2 (noise robustness)", sigma="ROBUST_SIGMAS"),
        }),
    "02_channel_selectivity": Notebook(
        "Channel selectivity: specialized and common channels, union of subspaces",
        "which middle-block channels are heavy-tailed across images (specialized) or near-Gaussian (common), "
        "what drives the specialized ones, and whether two classes live on their own channels",
        "Figs. 3, 5, 13",
        {
            "channel_statistics": Fig("Per channel: excess kurtosis across images against the fraction of images "
                                      "where it is active (red specialized, blue common, grey neither), and the "
                                      "histogram of lifetime participation ratios; trained, untrained, pixels.",
                                      sigma="SIGMA"),
            "fig13_channel_marginals": Fig("Histograms over images of the four highest-kurtosis (red) and four "
                                           "lowest-kurtosis (blue) channels (counts on a log scale), trained "
                                           "(top) and untrained.",
                                           "Fig. 13", sigma="SIGMA"),
            "fig3_max_activating": Fig("Specialized channels (rows): their most-activating held-out images "
                                       "(left, with the purity of class, instance and background) and random "
                                       "images where the channel is off (right).", "Fig. 3", sigma="SIGMA"),
            "fig5_union_of_subspaces": Fig("Two classes on the two specialized channels that separate them best "
                                           "and one common channel, trained (top) and untrained with the same "
                                           "selection (bottom).", "Fig. 5", sigma="SIGMA"),
        },
        CLASS_ONLY + "the top images' purity is the class purity alone (no background or instance purity); the "
        "criterion reads the class on every dataset."),
    "03_self_guided_reconstruction": Notebook(
        "Self-guided reconstruction from phi",
        "that samples drawn with the same network, guided only by an image's phi, keep its global structure, "
        "and what that costs with the authors' sampler and with our fast preset",
        "Fig. 7, algorithm boxes",
        {
            "fig7_self_guided_fast": Fig("Eight self-guided samples (fast preset) around each held-out target "
                                         "(centre, red frame).", "Fig. 7",
                                         sigma="target φ(x, σ) at every σ of the schedule"),
            "fig7_reference_vs_fast": Fig("The authors' backward-form reference sampler (shortened schedule) next "
                                          "to the fast preset on the same target and seed.",
                                          "Fig. 7, algorithm boxes",
                                          sigma="σ schedules of the reference and fast presets"),
            "unconditional_samples": Fig("Unconditional samples of the denoiser's prior (no guidance): the "
                                         "diversity baseline.", "algorithm box (unconditional)",
                                         sigma="coarse-to-fine from σ0"),
            "subspace_projections": Fig("Samples guided by only the specialized channels or only the common "
                                        "channels of the target's phi.", "section 4 (masked projection)",
                                        sigma="target φ(x, σ) at every σ of the schedule"),
            "centroid_samples": Fig("Samples from the mean phi of a class (its centroid), next to members of "
                                    "the class.", "section 4 (centroid targets)",
                                    sigma="target φ(x, σ) at every σ of the schedule"),
            "nfe_curves": Fig("phi relative error and PSNR to the target of the running estimate against the "
                              "number of network evaluations.", sigma="φ error measured at σ = 0.02"),
            "diversity_vs_distance": Fig("Per target: distance among samples (diversity) against distance to the "
                                         "target; grey crosses: unconditional samples.",
                                         sigma="target φ(x, σ) at every σ of the schedule"),
        },
        CLASS_ONLY + "the kept factor (on tuxphoto the background, the factor its readers read best) is the class: "
        "the claim asks whether samples keep their target's class."),
    "04_distances": Notebook(
        "Distances in phi space and between conditional densities",
        "whether Euclidean distance between phi's finds same-class neighbours and tracks the distance between "
        "the conditional densities p(x | phi) the denoiser induces",
        "Fig. 8",
        {
            "fig8_nearest_neighbours": Fig("Query images (first column) and their nearest held-out neighbours in "
                                           "phi space, in the untrained network's phi space and in pixel space.",
                                           "Fig. 8 (neighbours)", sigma="PHI_SIGMA"),
            "fig8_phi_vs_density_distance": Fig("Conditional-density distance against squared distance per image "
                                                "pair (log-log); dotted: the 5-95% band of their ratio.",
                                                "Fig. 8 (distances)", sigma="CD_SIGMAS"),
            "fig8_same_vs_different_class": Fig("Distributions of same-class and different-class distances "
                                                "(divided by the median) with the AUC of distance as a same-class "
                                                "detector.", "Fig. 8 (semantic distances, ours)",
                                                sigma="PHI_SIGMA"),
        },
        CLASS_ONLY + "the same-pair AUCs are for the class only; the criterion reads the class on every dataset."),
    "05_clustering": Notebook(
        "Clustering phi",
        "what k-means clusters of phi group together (class, object, background), how well clusters and classes "
        "separate, and how that compares with pixels and the untrained network",
        "Figs. 6, 15",
        {
            "fig6_clusters_vs_classes": Fig("Rows of k-means clusters (members nearest the centroid, left) next "
                                            "to rows of classes (random members, right).", "Fig. 6 (left)",
                                            sigma="PHI_SIGMA"),
            "fig6_separation": Fig("Centroid distance against spread along the joining line for pairs of clusters "
                                   "(red) and classes (blue); dotted: ratios 1, 2, 4.", "Fig. 6 (right)",
                                   sigma="PHI_SIGMA"),
            "fig15_tsne": Fig("One t-SNE embedding of phi coloured by the largest clusters (left) and by class "
                              "(right).", "Fig. 15", sigma="PHI_SIGMA"),
        },
        CLASS_ONLY + "clusters are scored against the class only (no background or instance AMI); the criterion "
        "reads the class on every dataset."),
    "06_linear_probe": Notebook(
        "Linear probe",
        "how linearly decodable class and background are from phi of every block, with a tuned probe on a train "
        "split and kNN, next to pixels, PCA pixels and untrained networks over init seeds",
        "linear probe (authors' scripts)",
        {
            "linear_probe_accuracy": Fig("Held-out accuracy of a ridge probe fitted on the train split, with 95% "
                                         "intervals, and kNN accuracy (black ticks) per representation (red: the "
                                         "middle block).", "linear probe (authors' scripts)", sigma="SIGMA"),
        },
        CLASS_ONLY + "the probe reads the class only (no background row)."),
    "07_explorer": Notebook(
        "Interactive explorer of phi",
        "how to browse held-out images through phi in JupyterLab: channels, what drives them, neighbours, "
        "reconstructions",
        "interactive explorer (ours)",
        {
            "explorer_image": Fig("The explorer's first panel: an image, its noisy version and the denoised one.",
                                  sigma="SIGMA"),
            "explorer_phi": Fig("The image's phi with its strongest channels marked.", sigma="PHI_SIGMA"),
            "explorer_channel": Fig("The top channel's activation map on the image and the held-out images that "
                                    "drive it most.", sigma="PHI_SIGMA"),
            "explorer_neighbours": Fig("Nearest neighbours in phi space and in pixel space (green: same class).",
                                       sigma="PHI_SIGMA"),
            "explorer_reconstructions": Fig("Self-guided reconstructions from the image's phi (fast preset).",
                                            sigma="target φ(x, σ) at every σ of the schedule"),
        }),
}

# notebook stem -> the paper figures it reproduces (the runner's HTML index)
PAPER_FIGURES = {k: v.paper for k, v in NOTEBOOKS.items()}


def figure_entry(notebook: str, name: str) -> Fig | None:
    """The `Fig` of figure ``name`` of ``notebook`` (None if either is not listed)."""
    nb = NOTEBOOKS.get(notebook)
    return nb.figures.get(name) if nb else None


def format_sigma(value) -> str:
    """A notebook's sigma parameter as title text: 0 -> clean images, None -> the paper's 50/255."""
    if value is None:
        return "σ = 50/255 (the paper's probe level)"
    if isinstance(value, (list, tuple)):
        return "σ ∈ {" + ", ".join(f"{float(v):g}" for v in value) + "}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"σ: {value}"
    return "σ = 0 (clean images)" if float(value) == 0 else f"σ = {float(value):g}"


def sigma_text(entry: Fig | None, namespace: dict | None) -> str:
    """The sigma part of a figure's title line, from its catalog entry and the notebook's namespace."""
    if entry is None or not entry.sigma:
        return ""
    s = entry.sigma
    if s.isidentifier() and s.isupper():
        if namespace is not None and s in namespace:
            return format_sigma(namespace[s])
        return ""
    return s
