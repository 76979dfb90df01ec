import re, csv, subprocess
R='/work/.mirror/airockchip+rknn_model_zoo/repo'
commit=subprocess.check_output(['git','--git-dir='+R,'rev-parse','HEAD']).decode().strip()
text=subprocess.check_output(['git','--git-dir='+R,'show','HEAD:README.md']).decode()
HDR='chip,model,architecture,input_shape,precision,runtime,measure,batch,value,unit,compute_unit,npu_layers,total_layers,source,commit,note'.split(',')
lines=text.split('\n')
start=[i for i,l in enumerate(lines) if l.startswith('## Model performance benchmark')][0]
hdr=None; rows=[]
for l in lines[start:]:
    if l.startswith('## ') and hdr and rows: break
    if not l.startswith('|'): continue
    cells=[c.strip() for c in l.strip().strip('|').split('|')]
    if cells[0]=='demo': hdr=cells; continue
    if set(cells[0])<=set('- ') and cells[0]: continue
    rows.append(cells)
ci=[i for i,h in enumerate(hdr) if h.startswith('RK3588')][0]
assert hdr[ci]=='RK3588<br />@single_core', hdr[ci]
ARCH={'mobilenetv2-12':'mobilenet_v2','resnet50-v2-7':'resnet50_v2','yolov5n':'yolov5n','yolov5s':'yolov5s','yolov5m':'yolov5m',
'yolov6n':'yolov6n','yolov6s':'yolov6s','yolov6m':'yolov6m','yolov7-tiny':'yolov7_tiny','yolov7':'yolov7',
'yolov8n':'yolov8n','yolov8s':'yolov8s','yolov8m':'yolov8m','yolov8n-obb':'yolov8n_obb','yolov10n':'yolov10n','yolov10s':'yolov10s',
'yolo11n':'yolo11n','yolo11s':'yolo11s','yolo11m':'yolo11m','yolox_s':'yolox_s','yolox_m':'yolox_m','ppyoloe_s':'ppyoloe_s','ppyoloe_m':'ppyoloe_m',
'yolo_world_v2s':'yolo_world_v2_s','clip_text':'clip_vit_b_32_text','yolov8n-pose':'yolov8n_pose',
'deeplab-v3-plus-mobilenet-v2':'deeplabv3plus_mobilenet_v2','yolov5n-seg':'yolov5n_seg','yolov5s-seg':'yolov5s_seg','yolov5m-seg':'yolov5m_seg',
'yolov8n-seg':'yolov8n_seg','yolov8s-seg':'yolov8s_seg','yolov8m-seg':'yolov8m_seg','ppseg_lite_1024x512':'pp_liteseg',
'RetinaFace_mobile320':'retinaface_mobilenet0_25','RetinaFace_resnet50_320':'retinaface_resnet50','lprnet':'lprnet',
'ppocrv4_det':'ppocrv4_det','ppocrv4_rec':'ppocrv4_rec','clip_images':'clip_vit_b_32_image','wav2vec2_base_960h_20s':'wav2vec2_base',
'whisper_base_20s':'whisper_base','yamnet_3s':'yamnet'}
OPT={'yolov5','yolov5_seg','yolov6','yolov7','yolov8','yolov8_seg','yolo11','yolox'}
EXTRA={
'resnet50-v2-7':'ONNX model zoo resnet50-v2 = pre-activation ResNet-50 v2 (not torchvision resnet50 v1)',
'yolov5s_relu':'yolov5s variant with ReLU activations (architecture left empty as non-standard)',
'deeplab-v3-plus-mobilenet-v2':'table lists inputs_shape [1, 513, 513, 1] (apparently a typo); examples/deeplabv3/python/convert.py uses input_size_list [[1,513,513,3]] NHWC with inputs=sub_7 outputs=logits/semantic/BiasAdd (graph cut); input_shape given as NCHW 1x3x513x513',
'ppseg_lite_1024x512':'name says 1024x512 but table inputs_shape is [1, 3, 512, 512]; input_shape taken from the table; model file pp_liteseg_cityscapes.onnx',
'mobilesam_decoder':'table inputs_shape [1, 1, 112, 112] is only the mask_input; decoder convert.py inputs are image_embeddings [1,256,28,28], point_coords [1,N,2], point_labels [1,N], mask_input [1,1,112,112], has_mask_input [1]',
'mobilesam_encoder_tiny':'MobileSAM TinyViT image encoder',
'RetinaFace_mobile320':'RK3588 figure (227.2) is lower than RK3562 (300.8) and RK3576 (470.5) in the same table',
'RetinaFace_resnet50_320':'',
'lprnet':'RK3588 figure is FP16 (only RV1109/RV1126/RK1808 columns are marked INT8); sirius-ai LPRNet_Pytorch 24x94 input',
'clip_text':'',
'ppocrv4_rec':'',
}
def shape(s, model):
    m=re.fullmatch(r'\[([\d,\s]+)\]',s)
    if m:
        dims=[d.strip() for d in m.group(1).split(',')]
        if model=='deeplab-v3-plus-mobilenet-v2': return '1x3x513x513'
        return 'x'.join(dims)
    return ''
out=[]; demo=None
for c in rows:
    if c[0]: demo=c[0]
    model=c[1]; ins=c[2].replace('&nbsp;',' ').strip(); dtype=c[3]; v=c[ci]
    notes=["RK3588 column header 'RK3588 @single_core': one of the three RK3588 NPU cores",
           "README: data collected at each platform's maximum NPU frequency; times model inference only, excludes pre-/post-processing (FAQ.md 1.5: only rknn.run is timed)",
           "batch not stated; inputs_shape batch dim is 1" if ins.startswith('[1') else "batch not stated"]
    if demo in OPT: notes.append('zoo-optimised export: post-processing subgraph after the final head convs removed from the model (see examples/%s/README.md)'%demo)
    if model=='clip_text': notes.append('listed under demo %s'%demo)
    if EXTRA.get(model): notes.append(EXTRA[model])
    isp=shape(ins,model)
    if not isp: notes.append('source inputs_shape: %s'%ins)
    m=re.match(r'RTF\s*<br>\s*([\d.]+)',v)
    if m:
        measure='real_time_factor'; unit='rtf'; val=m.group(1)
        notes.append('source gives RTF (processing time / audio duration; lower is better), not FPS')
    else:
        measure='throughput'; unit='fps'; val=v
        assert re.fullmatch(r'[\d.]+',val), (model,val)
    out.append(dict(chip='rk3588',model=model,architecture=ARCH.get(model,''),input_shape=isp,precision=dtype.lower(),runtime='rknn',
        measure=measure,batch='1',value=val,unit=unit,compute_unit='NPU',npu_layers='',total_layers='',
        source='airockchip/rknn_model_zoo:README.md',commit=commit,note='; '.join(notes)+'; demo=%s'%demo))
with open('/tmp/fidelity-source.csv','w',newline='') as f:
    w=csv.DictWriter(f,fieldnames=HDR,lineterminator='\n'); w.writeheader(); w.writerows(out)
print(len(out), commit)
