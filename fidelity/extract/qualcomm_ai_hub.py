#!/usr/bin/env python3
"""Extract QCS6490 latency rows from quic/ai-hub-models perf.yaml files (git mirror, no work tree)."""
import csv, subprocess, sys, yaml, re

G = '/work/.mirror/quic+ai-hub-models/repo'
OUT = '/tmp/fidelity-source.csv'

def git(*a):
    return subprocess.run(['git', '--git-dir=' + G, *a], check=True, capture_output=True, text=True).stdout

commit = git('rev-parse', 'HEAD').strip()
dc = yaml.safe_load(git('show', 'HEAD:qai_hub_models/devices_and_chipsets.yaml'))
QCS6490_DEVICES = {d for d, v in dc['devices'].items() if 'qcs6490' in str(v.get('chipset', '')).lower()}
# also accept names seen in older layouts
QCS6490_NAME_RE = re.compile(r'rb3 gen 2|qcs6490', re.I)

# Default input shapes taken from each model's get_input_spec() defaults in model.py
# (or the shared base class); key = (model, component) or model.
S = lambda h, w, c=3: f'1x{c}x{h}x{w}'
IMNET = S(224, 224)
SHAPES = {
    'bgnet': S(416, 416), 'bisenet': S(720, 960), 'ddcolor': S(256, 256),
    'ddrnet23_slim': S(1024, 2048), 'deeplab_xception': S(480, 520),
    'deeplabv3_plus_mobilenet': S(520, 520), 'fcn_resnet50': S(520, 520),
    ('detectron2_detection', 'Detectron2ProposalGenerator'): S(800, 800),
    ('easyocr', 'EasyOCRDetector'): S(608, 800),
    ('easyocr', 'EasyOCRRecognizer'): S(64, 800, 1),
    'eyegaze': '1x96x160', 'face_attrib_net': S(128, 128), 'face_det_lite': S(480, 640, 1),
    'facemap_3dmm': S(128, 128),
    'ffnet_122ns_lowres': S(512, 1024), 'ffnet_78s_lowres': S(512, 1024),
    'ffnet_40s': S(1024, 2048), 'ffnet_54s': S(1024, 2048), 'ffnet_78s': S(1024, 2048),
    'pidnet': S(1024, 2048), 'sinet': S(224, 224),
    'foot_track_net': S(480, 640), 'gear_guard_net': S(320, 192),
    'hrnet_face': S(256, 256), 'hrnet_pose': S(256, 192), 'rtmpose_body2d': S(256, 192),
    ('mediapipe_face', 'FaceDetector'): S(256, 256), ('mediapipe_face', 'FaceLandmarkDetector'): S(192, 192),
    ('mediapipe_hand_gesture', 'PalmDetector'): S(256, 256),
    ('mediapipe_hand_gesture', 'HandLandmarkDetector'): S(224, 224),
    ('mediapipe_pose', 'PoseDetector'): S(128, 128), ('mediapipe_pose', 'PoseLandmarkDetector'): S(256, 256),
    'mediapipe_selfie': S(256, 256), 'midas': S(256, 256), 'mobile_vit': S(256, 256),
    'movenet': S(192, 192), 'posenet_mobilenet': S(513, 257), 'segformer_base': S(512, 512),
    'unet_segmentation': S(640, 1280),
    'quicksrnetlarge': S(128, 128), 'quicksrnetmedium': S(128, 128), 'quicksrnetsmall': S(128, 128),
    'real_esrgan_general_x4v3': S(128, 128), 'real_esrgan_x4plus': S(128, 128),
    'sesr_m5': S(128, 128), 'xlsr': S(128, 128),
    'resnet_2plus1d': '1x3x16x112x112', 'resnet_3d': '1x3x16x112x112', 'resnet_mixed': '1x3x16x112x112',
    'yamnet': '1x1x96x64',
    ('whisper_small_quantized', 'WhisperSmallEncoderQuantizable'): '1x80x3000',
    'bert_base_uncased_hf': '1x384', 'distil_bert_base_uncased_hf': '1x384',
}
for m in ['convnext_base', 'convnext_tiny', 'densenet121', 'dla102x', 'efficientformer', 'efficientnet_b0',
          'efficientnet_b4', 'efficientnet_v2_s', 'googlenet', 'gpunet', 'inception_v3', 'mnasnet05',
          'mobilenet_v2', 'mobilenet_v3_large', 'mobilenet_v3_small', 'regnet', 'regnet_y_800mf',
          'resnet101', 'resnet18', 'resnet50', 'resnext101', 'resnext50', 'sequencer2d', 'shufflenet_v2',
          'squeezenet1_1', 'vit', 'wideresnet50']:
    SHAPES[m] = IMNET
for m in ['yolor', 'yolov10_det', 'yolov11_det', 'yolov3', 'yolov5', 'yolov6', 'yolov7', 'yolov8_det', 'yolov8_seg', 'yolox']:
    SHAPES[m] = S(640, 640)
SHAPE_NOTES = {
    'bert_base_uncased_hf': 'input_shape is token sequence (batch x 384 tokens)',
    'distil_bert_base_uncased_hf': 'input_shape is token sequence (batch x 384 tokens)',
    'eyegaze': 'input is 1xHxW grayscale (no channel dim)',
    'face_det_lite': 'grayscale 1-channel input',
    'resnet_2plus1d': 'video input NCTHW (16 frames)', 'resnet_3d': 'video input NCTHW (16 frames)',
    'resnet_mixed': 'video input NCTHW (16 frames)',
    'yamnet': 'audio log-mel input 1x1x96x64',
    ('whisper_small_quantized', 'WhisperSmallEncoderQuantizable'): 'audio mel input 1x80x3000',
    ('whisper_small_quantized', 'WhisperSmallDecoderQuantizable'): 'decoder step with KV cache; multi-input, shape omitted',
    ('detectron2_detection', 'Detectron2ROIHead'): 'ROI head inputs: features 1x1024x50x50 + 200 proposal boxes; shape omitted',
    ('mediapipe_hand_gesture', 'CannedGestureClassifier'): 'inputs are 64-d hand landmark vectors; shape omitted',
    ('easyocr', 'EasyOCRRecognizer'): 'grayscale crop input',
}
ARCH = {
    'mobilenet_v2': 'mobilenet_v2', 'mobilenet_v3_large': 'mobilenet_v3_large', 'mobilenet_v3_small': 'mobilenet_v3_small',
    'resnet18': 'resnet18', 'resnet50': 'resnet50', 'resnet101': 'resnet101',
    'resnext50': 'resnext50_32x4d', 'resnext101': 'resnext101_32x8d', 'wideresnet50': 'wide_resnet50_2',
    'efficientnet_b0': 'efficientnet_b0', 'efficientnet_b4': 'efficientnet_b4', 'efficientnet_v2_s': 'efficientnet_v2_s',
    'inception_v3': 'inception_v3', 'googlenet': 'googlenet', 'squeezenet1_1': 'squeezenet1_1',
    'shufflenet_v2': 'shufflenet_v2_x0_5', 'densenet121': 'densenet121', 'mnasnet05': 'mnasnet0_5',
    'regnet': 'regnet_x_3_2gf', 'regnet_y_800mf': 'regnet_y_800mf', 'vit': 'vit_b_16',
    'convnext_tiny': 'convnext_tiny', 'convnext_base': 'convnext_base', 'mobile_vit': 'mobilevit_s',
    'dla102x': 'dla102x',
    'yolov3': 'yolov3_tiny', 'yolov5': 'yolov5m', 'yolov6': 'yolov6n', 'yolov7': 'yolov7_tiny',
    'yolov8_det': 'yolov8n', 'yolov8_seg': 'yolov8n_seg', 'yolov10_det': 'yolov10n', 'yolov11_det': 'yolo11n',
    'yolox': 'yolox_s',
    'deeplabv3_plus_mobilenet': 'deeplabv3_plus_mobilenet_v2', 'fcn_resnet50': 'fcn_resnet50',
    'unet_segmentation': 'unet', 'segformer_base': 'segformer_b0',
    'resnet_3d': 'r3d_18', 'resnet_2plus1d': 'r2plus1d_18', 'resnet_mixed': 'mc3_18',
    'bert_base_uncased_hf': 'bert_base_uncased', 'distil_bert_base_uncased_hf': 'distilbert_base_uncased',
    'movenet': 'movenet_lightning', 'midas': 'midas_v2_small',
}
ARCH_NOTES = {
    'yolov5': 'default weights yolov5mu.pt (medium, ultralytics-u head), not yolov5s',
    'yolov3': 'default weights yolov3-tinyu.pt',
    'shufflenet_v2': 'torchvision shufflenet_v2_x0_5',
    'segformer_base': 'weights nvidia/segformer-b0 despite folder name',
    'mobile_vit': 'apple/mobilevit-small',
}

files = [f for f in git('ls-tree', '-r', '--name-only', 'HEAD').split() if re.match(r'qai_hub_models/models/[^/]+/perf\.yaml$', f)]
rows, devnames, info_res = [], set(), {}
for path in files:
    model = path.split('/')[2]
    d = yaml.safe_load(git('show', f'HEAD:{path}')) or {}
    try:
        info = yaml.safe_load(git('show', f'HEAD:qai_hub_models/models/{model}/info.yaml')) or {}
        info_res[model] = str((info.get('technical_details') or {}).get('Input resolution', ''))
    except subprocess.CalledProcessError:
        pass
    for prec, pd in (d.get('precisions') or {}).items():
        comps = (pd or {}).get('components') or {}
        for comp, cd in comps.items():
            for dev, rts in ((cd or {}).get('performance_metrics') or {}).items():
                if not (dev in QCS6490_DEVICES or QCS6490_NAME_RE.search(dev)):
                    continue
                devnames.add(dev)
                for rt, det in (rts or {}).items():
                    det = det or {}
                    notes = []
                    if 'inference_time_milliseconds' in det:
                        v = det['inference_time_milliseconds']
                    elif 'inference_time' in det:  # older layout: microseconds
                        v = det['inference_time'] / 1000.0 if det['inference_time'] is not None else None
                        notes.append('converted from us')
                    else:
                        v = None
                    if det.get('llm_metrics'):
                        notes.append('llm_metrics present')
                    st = det.get('job_status')
                    if st and st != 'Passed':
                        notes.append(f'job_status={st}')
                    if v is None:
                        notes.append('no inference time')
                    lc = det.get('layer_counts') or {}
                    npu = lc.get('npu', 0) if lc else ''
                    tot = lc.get('total', '') if lc else ''
                    if lc and tot != '' and tot != (lc.get('npu', 0) + lc.get('gpu', 0) + lc.get('cpu', 0)):
                        notes.append(f'layer total {tot} != npu+gpu+cpu')
                    if lc.get('gpu'): notes.append(f"gpu_layers={lc['gpu']}")
                    if lc.get('cpu'): notes.append(f"cpu_layers={lc['cpu']}")
                    mem = det.get('estimated_peak_memory_range_mb') or {}
                    if mem:
                        notes.append(f"peak_mem_mb={mem.get('min')}-{mem.get('max')}")
                    if len(comps) > 1:
                        notes.insert(0, f'component={comp}')
                    shape = SHAPES.get((model, comp), SHAPES.get(model, ''))
                    sn = SHAPE_NOTES.get((model, comp), SHAPE_NOTES.get(model))
                    if sn: notes.append(sn)
                    if model in ARCH_NOTES: notes.append(ARCH_NOTES[model])
                    ir = info_res.get(model, '')
                    m = re.search(r'(\d+)x(\d+)', ir)
                    if len(comps) == 1 and shape.startswith('1x3x') and m and ir and len(shape.split('x')) == 4:
                        h, w = shape.split('x')[2:]
                        if {m.group(1), m.group(2)} != {h, w}:
                            notes.append(f"info.yaml says '{ir}' but model.py default input spec is {h}x{w}")
                    if dev != 'Dragonwing RB3 Gen 2 Vision Kit':
                        notes.append(f'device={dev}')
                    rows.append(dict(chip='qcs6490', model=model, architecture=ARCH.get(model, ''),
                        input_shape=shape, precision=prec, runtime=rt, measure='latency', batch=1,
                        value='' if v is None else repr(float(v)) if not float(v).is_integer() else f'{float(v):.1f}',
                        unit='ms', compute_unit=det.get('primary_compute_unit') or '',
                        npu_layers=npu, total_layers=tot, source=f'quic/ai-hub-models:{path}',
                        commit=commit, note='; '.join(notes), _comp=comp))

rows.sort(key=lambda r: (r['model'], r['precision'], r['runtime'], r['_comp']))
hdr = 'chip,model,architecture,input_shape,precision,runtime,measure,batch,value,unit,compute_unit,npu_layers,total_layers,source,commit,note'.split(',')
with open(OUT, 'w', newline='') as f:
    w = csv.DictWriter(f, fieldnames=hdr, extrasaction='ignore', lineterminator='\n')
    w.writeheader()
    w.writerows(rows)
print(len(rows), 'rows; devices:', devnames, file=sys.stderr)
