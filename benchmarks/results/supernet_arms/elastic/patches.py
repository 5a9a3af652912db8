"""Scratch patches of the supernet for ranking arms; apply(name) before anything builds a supernet."""
import torch
import torch.nn as nn
import torch.nn.functional as F


_applied = []


def apply(name: str) -> None:
    if _applied:
        assert _applied == [name], (_applied, name)
        return
    _applied.append(name)
    import nas.spaces.elastic_build as eb
    import nas.supernet as sn
    import nas.evaluators.inherited as inh
    if name in ("none", "nosmall"):
        return
    if name == "headw":  # one classifier per last-stage width instead of column slices of one
        orig_init, orig_extract = eb.Supernet.__init__, eb.extract_subnet

        def init(self, space, in_channels, num_classes):
            orig_init(self, space, in_channels, num_classes)
            widths = sorted({space.stage_widths(i)[-1] for i in range(len(space.cfg.width_multipliers))})
            self.heads = nn.ModuleDict({str(c): nn.Linear(c, num_classes) for c in widths})

        def forward(self, x, genome):
            y = self.stem(x)
            for spec in self.space.decode(genome):
                y = self.stages[spec.stage][spec.index](y, spec.kernel_size, spec.expand_ratio, spec.out_channels)
            return self.heads[str(y.shape[1])](F.adaptive_avg_pool2d(y, 1).flatten(1))

        @torch.no_grad()
        def extract(supernet, genome):
            net = orig_extract(supernet, genome)
            h = supernet.heads[str(net.classifier.in_features)]
            net.classifier.weight.copy_(h.weight)
            net.classifier.bias.copy_(h.bias)
            return net

        eb.Supernet.__init__, eb.Supernet.forward = init, forward
        eb.extract_subnet = sn.extract_subnet = inh.extract_subnet = extract
        return
    if name.startswith("head") and name[4:].isdigit():  # a fixed 1x1 feature layer of H channels before pooling
        H = int(name[4:])
        make_act = eb.make_act
        orig_sup_init, orig_sub_init, orig_extract = eb.Supernet.__init__, eb.SubNet.__init__, eb.extract_subnet

        def sup_init(self, space, in_channels, num_classes):
            orig_sup_init(self, space, in_channels, num_classes)
            cin = self.classifier.in_features
            self.feat = nn.Conv2d(cin, H, 1, bias=False)
            self.feat_bn = nn.BatchNorm2d(H)
            self.feat_act = make_act(space.cfg)()
            self.classifier = nn.Linear(H, num_classes)

        def sup_forward(self, x, genome):
            y = self.stem(x)
            for spec in self.space.decode(genome):
                y = self.stages[spec.stage][spec.index](y, spec.kernel_size, spec.expand_ratio, spec.out_channels)
            c = y.shape[1]
            y = self.feat_act(self.feat_bn(F.conv2d(y, self.feat.weight[:, :c])))
            return self.classifier(F.adaptive_avg_pool2d(y, 1).flatten(1))

        def sub_init(self, space, genome, in_channels, num_classes):
            orig_sub_init(self, space, genome, in_channels, num_classes)
            cin = self.classifier.in_features
            self.feat = nn.Sequential(nn.Conv2d(cin, H, 1, bias=False), nn.BatchNorm2d(H), make_act(space.cfg)())
            self.classifier = nn.Linear(H, num_classes)

        def sub_forward(self, x):
            y = self.feat(self.blocks(self.stem(x)))
            return self.classifier(y.mean(dim=(2, 3)))

        @torch.no_grad()
        def extract(supernet, genome):
            c_saved = supernet.classifier
            net = orig_extract(supernet, genome)  # copies the classifier (H inputs, the same shape)
            c = net.feat[0].in_channels
            net.feat[0].weight.copy_(supernet.feat.weight[:, :c])
            net.feat[1].load_state_dict(supernet.feat_bn.state_dict())
            net.feat[2].load_state_dict(supernet.feat_act.state_dict())
            return net

        eb.Supernet.__init__, eb.Supernet.forward = sup_init, sup_forward
        eb.SubNet.__init__, eb.SubNet.forward = sub_init, sub_forward
        eb.extract_subnet = sn.extract_subnet = inh.extract_subnet = extract
        return
    raise SystemExit(f"unknown patch {name}")
