"""The Python each step runs, written out from its current settings ("Show code").

The snippets chain: Data makes ``ds``, Train ``model``, Quantize ``qmodel`` and/or ``plan``,
Export ``prj``; together they run as a script.
"""

from __future__ import annotations


def data_code(s: dict) -> str:
    return f"""\
from fastml_lab.data import load_jets

ds = load_jets({s['source']!r}, n_events={s['n_events']!r}, seed={s['seed']!r})
print(ds.notice)
print(ds.summary())"""


def train_code(s: dict, model_path) -> str:
    return f"""\
from fastml_lab.evaluate import evaluate
from fastml_lab.plots import plot_confusion, plot_roc, plot_training
from fastml_lab.train import build_model, parse_spec, save_model, train_model

spec = parse_spec({s['spec']!r}, n_inputs=ds.X_train.shape[1], n_classes=len(ds.class_names))
model = build_model(spec, seed={s['seed']!r})
history = train_model(model, ds, epochs={s['epochs']!r}, batch_size={s['batch_size']!r},
                      learning_rate={s['learning_rate']!r}, patience={s['patience']!r})
evaluation = evaluate(model, ds)
print("test accuracy", evaluation.accuracy, evaluation.auc)
plot_training(history)
plot_roc(evaluation)
plot_confusion(evaluation)
save_model(model, {str(model_path)!r})"""


def quantize_code(s: dict) -> str:
    from .quantize_step import qat_bits

    lines = ["from fastml_lab import quantize"]
    if s["method"] == "ptq":
        base = "model"
        lines += ["from fastml_lab.hls import PrecisionPlan, export", "from fastml_lab.hls.study import ptq_study", ""]
        if s["prune"]:
            lines += [f"pruned = quantize.prune(model, ds, sparsity={s['prune']!r}, epochs={s['epochs']!r})",
                      "qmodel = pruned.model", "print(pruned.sparsity)"]
            base = "qmodel"
        lines += [f"plan = PrecisionPlan.from_data({base}, ds.X_train, width={s['activation_bits']!r}, "
                  f"weight_width={s['weight_bits']!r})",
                  f"print(ptq_study({base}, ds.X_test, ds.labels_test, plan=plan)['accuracy'])", "",
                  f"quantize.profile({base}, ds.X_test, plan=plan).plot()"]
        fit_target = f"export({base}, 'fit_check', plan=plan, overwrite=True).firmware()"
    else:
        beta = s["hgq_beta"] if s["method"] == "hgq" else None
        lines += ["", f"result = quantize.quantize(model, ds, bits={qat_bits(s)!r}, hgq_beta={beta!r}, "
                      f"prune={s['prune'] or None!r},",
                  f"                           epochs={s['epochs']!r}, batch_size={s['batch_size']!r})",
                  "qmodel = result.model",
                  "print(result.mode, result.ebops, result.sparsity)", "",
                  "quantize.profile(qmodel, ds.X_test).plot()  # against the types its quantizers learned"]
        fit_target = "qmodel"
    lines += [f"study = quantize.bit_width_study(model, ds, bits={tuple(s['study_bits'])!r}, mode='ptq')",
              "print(study.table())", "study.plot()", "",
              f"estimate = quantize.fit_estimate({fit_target})", "print(estimate.summary())"]
    return "\n".join(lines)


def export_code(s: dict, project_dir, quantized: bool = False, planned: bool = False) -> str:
    """``quantized``/``planned``: whether the Quantize step left ``qmodel``/``plan``."""
    if s["plan"] == "quantize":
        source = "qmodel" if quantized else "model"
        plan = "plan" if planned else "None"  # None: the types come from the HGQ2 quantizers
    elif s["plan"] == "data":
        source, plan = "model", "PrecisionPlan.from_data(model, ds.X_train)"
    else:
        source, plan = "model", f"PrecisionPlan.uniform({s['precision']!r})"
    check = s["check_events"]
    csim = f"""
simulated = run_csim(prj, ds.X_test[:{check!r}])       # compiled C++ (g++)
print("mismatches:", int((simulated != emulated[:{check!r}]).sum()))""" if s["csim"] else ""
    return f"""\
import numpy as np
from fastml_lab.hls import PrecisionPlan, export, run_csim

exported = {source}
prj = export(exported, {str(project_dir)!r}, plan={plan},
             backend={s['backend']!r}, reuse_factor={s['reuse_factor']!r}, strategy={s['strategy']!r},
             scaler=ds.scaler, class_names=ds.class_names, feature_names=ds.feature_names, overwrite=True)
emulated = prj.firmware().predict(ds.X_test)          # the bit-exact emulator{csim}
print("fixed-point accuracy:", np.mean(emulated.argmax(1) == ds.labels_test))
print(prj.meta["timing"])"""


def deploy_code(s: dict, project_path, package_path) -> str:
    return f"""\
from fastml_lab import overlay

path = overlay.package({str(project_path)!r}, name={s['name']!r}, out={str(package_path)!r}, overwrite=True)
with overlay.load(path, backend={s['backend']!r}) as ol:
    print("running on:", ol.backend)
    outputs = ol.predict(ds.X_test)
    print("accuracy:", (outputs.argmax(1) == ds.labels_test).mean())
    print(ol.profile(ds.X_test[:{s['profile_events']!r}]))"""
