import re, csv, json, subprocess
H='/work/.mirror/hailo-ai+hailo_model_zoo/repo'
commit=subprocess.check_output(['git','--git-dir='+H,'rev-parse','HEAD']).decode().strip()
raw=json.load(open('/tmp/zoos/hailo_raw.json'))
HDR='chip,model,architecture,input_shape,precision,runtime,measure,batch,value,unit,compute_unit,npu_layers,total_layers,source,commit,note'.split(',')
ARCH={
'deit_base':'deit_base','deit_small':'deit_small','deit_tiny':'deit_tiny','efficientformer_l1':'efficientformer_l1',
'efficientnet_lite0':'efficientnet_lite0','efficientnet_lite1':'efficientnet_lite1','efficientnet_lite2':'efficientnet_lite2',
'efficientnet_lite3':'efficientnet_lite3','efficientnet_lite4':'efficientnet_lite4',
'efficientnet_s':'efficientnet_edgetpu_s','efficientnet_m':'efficientnet_edgetpu_m','efficientnet_l':'efficientnet_edgetpu_l',
'fastvit_sa12':'fastvit_sa12','hardnet39ds':'hardnet39ds','hardnet68':'hardnet68','inception_v1':'inception_v1',
'mobilenet_v1':'mobilenet_v1','mobilenet_v2_1.0':'mobilenet_v2','mobilenet_v2_1.4':'mobilenet_v2_1.4',
'regnetx_1.6gf':'regnetx_1_6gf','regnetx_800mf':'regnetx_800mf','repghost_1_0x':'repghost_1_0x','repghost_2_0x':'repghost_2_0x',
'repvgg_a1':'repvgg_a1','repvgg_a2':'repvgg_a2','resnet_v1_18':'resnet18','resnet_v1_34':'resnet34','resnet_v1_50':'resnet50',
'resnext26_32x4d':'resnext26_32x4d','resnext50_32x4d':'resnext50_32x4d','squeezenet_v1.1':'squeezenet1_1',
'swin_small':'swin_s','swin_tiny':'swin_t','vit_base':'vit_b_16','vit_small':'vit_s_16','vit_tiny':'vit_ti_16',
'cas_vit_m':'cas_vit_m','cas_vit_s':'cas_vit_s','cas_vit_t':'cas_vit_t',
'fast_depth':'fast_depth','scdepthv3':'scdepthv3',
'scrfd_10g':'scrfd_10g','scrfd_2.5g':'scrfd_2_5g','scrfd_500m':'scrfd_500m','lightface_slim':'ultra_light_face_slim',
'retinaface_mobilenet_v1':'retinaface_mobilenet_v1','arcface_mobilefacenet':'mobilefacenet',
'dncnn3':'dncnn3','dncnn_color_blind':'dncnn_color_blind',
'yolov5l_seg':'yolov5l_seg','yolov5m_seg':'yolov5m_seg','yolov5n_seg':'yolov5n_seg','yolov5s_seg':'yolov5s_seg',
'yolov8m_seg':'yolov8m_seg','yolov8n_seg':'yolov8n_seg','yolov8s_seg':'yolov8s_seg',
'zero_dce':'zero_dce','zero_dce_pp':'zero_dce_pp',
'efficientdet_lite0':'efficientdet_lite0','efficientdet_lite1':'efficientdet_lite1','efficientdet_lite2':'efficientdet_lite2',
'ssd_mobilenet_v1':'ssd_mobilenet_v1','ssd_mobilenet_v2':'ssd_mobilenet_v2','tiny_yolov3':'yolov3_tiny','tiny_yolov4':'yolov4_tiny',
'yolov10b':'yolov10b','yolov10n':'yolov10n','yolov10s':'yolov10s','yolov10x':'yolov10x',
'yolov11l':'yolo11l','yolov11m':'yolo11m','yolov11n':'yolo11n','yolov11s':'yolo11s','yolov11x':'yolo11x',
'yolov3':'yolov3','yolov3_416':'yolov3','yolov3_gluon':'yolov3','yolov3_gluon_416':'yolov3',
'yolov5m':'yolov5m','yolov5s':'yolov5s','yolov5m_6.1':'yolov5m','yolov5m6_6.1':'yolov5m6',
'yolov6n':'yolov6n','yolov6n_0.2.1':'yolov6n','yolov7':'yolov7','yolov7_tiny':'yolov7_tiny','yolov7e6':'yolov7_e6',
'yolov8l':'yolov8l','yolov8m':'yolov8m','yolov8n':'yolov8n','yolov8s':'yolov8s','yolov8x':'yolov8x','yolov9c':'yolov9c',
'yolox_tiny':'yolox_tiny','osnet_x1_0':'osnet_x1_0','yolov8m_pose':'yolov8m_pose','yolov8s_pose':'yolov8s_pose',
'deeplab_v3_mobilenet_v2':'deeplabv3_mobilenet_v2','unet_mobilenet_v2':'unet_mobilenet_v2','stdc1':'stdc1',
'mspn_regnetx_800mf':'mspn_regnetx_800mf','espcn_x2':'espcn_x2','espcn_x3':'espcn_x3','espcn_x4':'espcn_x4',
'real_esrgan_x2':'real_esrgan_x2','r3d_18':'r3d_18','fast_sam_s':'fast_sam_s','stereonet':'stereonet',
'clip_resnet_50_text_encoder':'clip_resnet50_text','clip_resnet_50x4_text_encoder':'clip_resnet50x4_text',
'clip_vit_b_16_text_encoder':'clip_vit_b_16_text','clip_vit_b_32_text_encoder':'clip_vit_b_32_text',
'clip_resnet_50_image_encoder':'clip_resnet50_image','clip_resnet_50x4_image_encoder':'clip_resnet50x4_image',
'clip_vit_b_16_image_encoder':'clip_vit_b_16_image','clip_vit_b_32_image_encoder':'clip_vit_b_32_image',
}
EXTRA={
'efficientnet_s':'architecture inferred as EfficientNet-EdgeTPU-S from params/accuracy (not stated in source)',
'efficientnet_m':'architecture inferred as EfficientNet-EdgeTPU-M from params/accuracy (not stated in source)',
'efficientnet_l':'architecture inferred as EfficientNet-EdgeTPU-L from params/accuracy (not stated in source)',
'mobilenet_v3':'TF-slim MobileNetV3 variant not specified; params/OPS do not match mobilenet_v3_large so architecture left empty',
'resnet_v1_50':'TF-slim resnet_v1_50 (Hailo OPS 6.98 G)',
'resnet_v1_18':'Hailo resnet_v1_18','resnet_v1_34':'Hailo resnet_v1_34',
'yolov5s':'cfg/networks/yolov5s.yaml source: ultralytics yolov5 release v2.0 (with SPP)',
'yolov5m':'cfg/networks/yolov5m.yaml source: ultralytics yolov5 release v2.0 (with SPP)',
'yolov5m_6.1':'ultralytics yolov5 v6.1','yolov5m6_6.1':'ultralytics yolov5 v6.1 P6 model',
'yolov3_gluon':'GluonCV YOLOv3; source Hardware Degradation column reads 35.7 (looks like a HW mAP, not a degradation)',
'yolov3_gluon_416':'GluonCV YOLOv3 at 416','yolov3_416':'YOLOv3 at 416',
'yolov4_leaky':'source Hardware Degradation is -4.73 (negative)',
'yolov6n_0.2.1_nms_core':'variant with NMS on the Hailo device (nms_core); FPS much lower than yolov6n_0.2.1',
'centernet_resnet_v1_18_postprocess':'postprocess included in the compiled model','centernet_resnet_v1_50_postprocess':'postprocess included in the compiled model',
'lprnet':'Hailo LPRNet variant (7.14 M params, 75x300 input) differs from the 24x94 sirius-ai LPRNet; architecture left empty',
'real_esrgan_x2':'FPS 1 at both batch sizes (2350 GOPS per frame)',
'petrv2_repvggB0_transformer_pp_800x320':'two inputs, source Input Resolution: 12x250x1280, 12x250x256 (not images); converted mechanically HxWxC->1xCxHxW per input; source Hardware Degradation 23.3 looks like a HW score rather than a degradation',
'petrv2_repvggB0_backbone_pp_800x320':'second table in the file: header row lists FPS(1), FPS(8), Input Resolution, Params, OPS, Pretrained, Source, Compiled, Profile Report (10 cols) but the data row has 9 cells in the standard order (float empty, Hardware Degradation 0.0, FPS 573, FPS 573, Links, 320x800x3, 13.39, 31.19); parsed positionally in the standard order',
'stereonet':'two inputs (stereo pair), source Input Resolution 368x1232x3, 368x1232x3; source Params (M) 623.1 looks implausible',
'r3d_18':'video model; source Input Resolution 112x112x48 (presumably 16 frames x 3 channels stacked on C)',
'dncnn3':'single-channel (grayscale) input','espcn_x2':'single-channel (Y) input','espcn_x3':'single-channel (Y) input','espcn_x4':'single-channel (Y) input',
'vit_base_bn':'ViT variant with BatchNorm (Hailo-modified); architecture left empty','vit_small_bn':'ViT variant with BatchNorm (Hailo-modified)','vit_tiny_bn':'ViT variant with BatchNorm (Hailo-modified)',
'hand_landmark_lite':'no accuracy columns in this table','paddle_ocr_v3_recognition':'table has no Params/OPS columns',
}
def conv(s):
    parts=[p.strip() for p in s.split(',')]
    out=[]
    for p in parts:
        d=p.split('x')
        assert len(d)==3, s
        h,w,c=d; out.append('1x%sx%sx%s'%(c,h,w))
    return ';'.join(out)
rows=[]
for o in raw:
    hdr=o['hdr']; cells=o['cells']
    name_raw=cells[0]
    flags=re.findall(r'\|(\w+)\|',name_raw)
    name=re.sub(r'\|\w+\|','',name_raw).strip()
    if len(hdr)==len(cells):
        d=dict(zip(hdr,cells))
    else:
        std=['Network Name','float','Hardware Degradation','FPS (Batch Size=1)','FPS (Batch Size=8)','Links','Input Resolution (HxWxC)','Params (M)','OPS (G)']
        assert name=='petrv2_repvggB0_backbone_pp_800x320' and len(cells)==9
        d=dict(zip(std,cells))
    task=o['file'][len('HAILO8_'):-len('.rst')]
    ires=d['Input Resolution (HxWxC)']
    if name.endswith('text_encoder'):
        ishape=ires; shape_note='source Input Resolution %s is a token-embedding tensor (tokens x width), not HxWxC; kept as written'%ires
    else:
        ishape=conv(ires); shape_note='source Input Resolution (HxWxC) %s'%ires
    acc=[]
    for k in hdr[1:]:
        if k in d and not k.startswith('FPS') and k not in ('Links','Input Resolution (HxWxC)','Params (M)','OPS (G)','Pretrained','Source','Compiled','Profile Report'):
            acc.append('%s=%s'%(k,d[k]))
    if name=='petrv2_repvggB0_backbone_pp_800x320':
        acc=['float=%s'%d['float'],'Hardware Degradation=%s'%d['Hardware Degradation']]
    for bk in ('FPS (Batch Size=1)','FPS (Batch Size=8)'):
        b=re.search(r'=(\d+)',bk).group(1)
        val=d[bk]
        assert re.fullmatch(r'[\d.]+',val), (name,val)
        notes=['Hailo-8; task=%s; dataset=%s'%(task,o['section']),
               'Params (M)=%s; OPS (G)=%s'%(d.get('Params (M)','n/a'),d.get('OPS (G)','n/a')),
               '; '.join(acc) if acc else 'no accuracy columns',
               shape_note,
               'precision not stated per model: Hailo DFC quantised (8-bit default; some layers may be 16-bit)',
               "FPS column '%s'; source does not say whether host pre/post-processing is included (docs/BENCHMARKS.rst says FPS is measured with hailortcli benchmark on the HEF, i.e. device-side)"%bk,
               'compiled with Hailo Dataflow Compiler v3.33.0 (HEFs under ModelZoo/Compiled/v2.17.0)']
        if 'rocket' in flags: notes.append('marked |rocket| (Hailo Benchmark network; runs in performance mode)')
        if 'star' in flags: notes.append('marked |star| (TAPPAS network; runs in performance mode)')
        if EXTRA.get(name): notes.append(EXTRA[name])
        rows.append(dict(chip='hailo8',model=name,architecture=ARCH.get(name,''),input_shape=ishape,precision='int8',runtime='hailort',
            measure='throughput',batch=b,value=val,unit='fps',compute_unit='NPU',npu_layers='',total_layers='',
            source='hailo-ai/hailo_model_zoo:docs/public_models/HAILO8/%s'%o['file'],commit=commit,note='; '.join(notes)))
with open('/tmp/fidelity-source.csv','w',newline='') as f:
    w=csv.DictWriter(f,fieldnames=HDR,lineterminator='\n'); w.writeheader(); w.writerows(rows)
print(len(rows),commit)
