"""What bench/dirtorch_side_by_side.py and bench/dirtorch_eval_side_by_side.py share: a network
built by dirtorch itself and made to behave like a trained one, and its saving in the layout of the
released models."""
import numpy as np


def measured_network(arch, image_paths, shrink=1):
    """dirtorch's `create_model(<arch>_rmac, GeM, 2048-d FC)` from seed 0, its batch norms' affine
    parameters drawn around 1 and 0 and their running statistics measured on the images
    (cumulative averages, each image shrunk by `shrink`), so that a deep random network's
    activations stay in range as a trained one's do; GeM p 2.7. Returns (net in eval mode,
    model_options)."""
    import torch
    from PIL import Image
    import dirtorch.nets as nets
    torch.manual_seed(0)
    options = {'arch': arch + '_rmac', 'out_dim': 2048, 'pooling': 'gem', 'gemp': 3,
               'without_fc': False, 'dropout_p': None, 'norm_features': False}
    net = nets.create_model(pretrained='', **options)
    mean = torch.tensor(net.preprocess['mean']).view(1, 3, 1, 1)
    std = torch.tensor(net.preprocess['std']).view(1, 3, 1, 1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    net.train()
    with torch.no_grad():
        for p in image_paths:
            im = Image.open(p).convert('RGB')
            if shrink != 1:
                im = im.resize((im.size[0] // shrink, im.size[1] // shrink), Image.BILINEAR)
            x = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)
            net((x - mean) / std)
        net.adpool.p.fill_(2.7)
    net.eval()
    net.iscuda = False
    return net, options


def save_released_layout(path, net, options, pca=None):
    """torch.save in the pre-1.6 format with `module.` prefixes, `model_options`, `preprocess` (and
    `pca` when given), as the released models were saved."""
    import torch
    ckpt = {
        'state_dict': {'module.' + k: v for k, v in net.state_dict().items()},
        'model_options': options,
        'preprocess': net.preprocess,
        'epoch': 1,
    }
    if pca is not None:
        ckpt['pca'] = pca
    torch.save(ckpt, path, _use_new_zipfile_serialization=False)
